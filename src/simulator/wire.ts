import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** An answer still to be written: a string body is sent as HTML, anything else as JSON. */
export interface Answer {
  status: number;
  body: unknown;
  headers?: OutgoingHttpHeaders;
}

export interface Received {
  bytes: number;
  /** The body, or undefined when it was longer than `limit`. */
  text: string | undefined;
  limit: number | null;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

/** The error envelope, the only shape Verbose documents for a failure. */
export function failure(status: number, error: string): Answer {
  return { status, body: { ok: false, error } };
}

export function send(res: ServerResponse, answer: Answer): void {
  if (res.destroyed) return;
  const html = typeof answer.body === 'string';
  const text = html ? (answer.body as string) : JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'content-type': html ? 'text/html; charset=utf-8' : 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...answer.headers,
  });
  res.end(text);
}

export function parseJson(text: string): Checked<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, error: 'Invalid JSON body' };
  }
}

/**
 * Reads the whole body, even past `maxBytes` (then only counted, not kept), so the connection stays usable
 * for keep-alive.
 */
export async function receive(req: IncomingMessage, maxBytes: number | null): Promise<Received> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (maxBytes !== null && bytes > maxBytes) chunks.length = 0;
    else chunks.push(chunk);
  }
  const text =
    maxBytes !== null && bytes > maxBytes ? undefined : Buffer.concat(chunks, bytes).toString('utf8');
  return { bytes, text, limit: maxBytes };
}

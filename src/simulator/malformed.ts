import type { ServerResponse } from 'node:http';
import type { MalformedKind } from './faults.js';

/** A malformed answer, written byte for byte as given (no envelope, no re-encoding). */
export interface MalformedAnswer {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
  /** Send only this many characters of `body`, then close the connection (Content-Length still says all). */
  cutAfter?: number;
}

const SUCCESS = '{"ok":true,"imported":1,"skipped":0}';
const WEB_APP_PAGE =
  '<!DOCTYPE html><html><head><title>Verbose – Sign in</title></head>' +
  '<body><div id="root">Sign in to Verbose</div><script src="/app.js"></script></body></html>';
const BAD_REQUEST_PAGE =
  '<!DOCTYPE html><html><head><title>400: BAD_REQUEST</title></head>' +
  '<body><h1>400: BAD_REQUEST</h1><p>Code: <code>MALFORMED_REQUEST</code></p></body></html>';
/** What Verbose might say in an `ok: false` envelope; not documented, so any text will do. */
export const OK_FALSE_ERROR = 'Contact limit reached for this workspace';

/** The answer of one kind for a request to `path` on `host` (the Host header it came with). */
export function malformedAnswer(kind: MalformedKind, host: string, path: string): MalformedAnswer {
  const json = 'application/json; charset=utf-8';
  const html = 'text/html; charset=utf-8';
  switch (kind) {
    case 'empty':
      return { status: 200, contentType: json, body: '' };
    case 'truncated':
      return { status: 200, contentType: json, body: SUCCESS.slice(0, SUCCESS.indexOf(':1') + 1) };
    case 'cutOff':
      return { status: 200, contentType: json, body: SUCCESS, cutAfter: 12 };
    case 'html':
      return { status: 200, contentType: html, body: WEB_APP_PAGE };
    case 'okFalse200':
      return { status: 200, contentType: json, body: JSON.stringify({ ok: false, error: OK_FALSE_ERROR }) };
    case 'html400':
      return { status: 400, contentType: html, body: BAD_REQUEST_PAGE };
    case 'redirect': {
      const location = `https://${host}${path}`;
      return {
        status: 308,
        contentType: 'text/plain; charset=utf-8',
        body: `Redirecting to ${location}`,
        headers: { location },
      };
    }
  }
}

/** Writes the answer; resolves once it is written, or once the connection is closed for `cutAfter`. */
export function sendMalformed(res: ServerResponse, answer: MalformedAnswer): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    res.writeHead(answer.status, {
      'content-type': answer.contentType,
      'content-length': Buffer.byteLength(answer.body),
      ...answer.headers,
    });
    if (answer.cutAfter === undefined) {
      res.end(answer.body, resolve);
      return;
    }
    // Destroyed only once the part is flushed, so the client sees it arrive and then the break.
    res.write(answer.body.slice(0, answer.cutAfter), () => {
      res.destroy();
      resolve();
    });
  });
}

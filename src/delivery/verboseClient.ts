import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher, request } from 'undici';
import type { ListTarget } from '../domain.js';
import { errorMessage } from '../errors.js';
import { scrubber } from '../log.js';
import type { Now } from './clock.js';
import type { VerboseContact } from './coalescer.js';

/** How one `POST /api/public/contacts` ended, in the status classes of DESIGN.md section 3. */
export type UpsertOutcome =
  /** 2xx with `ok: true`. The counts and the list id are optional: the reference only promises `ok`. */
  | { kind: 'accepted'; status: number; imported?: number; skipped?: number; listId?: string }
  /** 400 (or 422), or a 2xx saying `ok: false`: something in the batch is bad; `error` is the API's text. */
  | { kind: 'invalid'; status: number; error: string }
  /** 413: the body is too large for the API or its host. */
  | { kind: 'tooLarge'; status: 413; error: string }
  /** 401/403: the key is missing, wrong or revoked. */
  | { kind: 'unauthorized'; status: number }
  /** Worth retrying later: 408, 429, 5xx, other unexpected answers, timeouts and connection errors. */
  | Transient;

export interface Transient {
  kind: 'transient';
  status: number | 'network' | 'timeout';
  /** From `Retry-After`, when the answer had one. */
  retryAfterMs?: number;
  /** What happened, for logs; never contains the API key. */
  detail: string;
}

export interface Workspace {
  id: string;
  name: string;
}

export type MeOutcome =
  | { kind: 'ok'; workspace: Workspace }
  | { kind: 'unauthorized'; status: number }
  | Transient;

/** What delivery needs of the wire client. */
export interface ContactSender {
  /** Rejects only with `signal`'s reason when the caller aborts; every other failure is an outcome. */
  upsert(
    target: ListTarget,
    contacts: readonly VerboseContact[],
    signal?: AbortSignal,
  ): Promise<UpsertOutcome>;
}

export interface VerboseClientOptions {
  /** `verbose.url`, the base URL. */
  url: string;
  apiKey: string;
  /** `verbose.request_timeout_ms`: a request with no complete answer after this long is a transient failure. */
  requestTimeoutMs: number;
  /** Connections kept alive to the API (default 8; delivery uses `concurrency` of them). */
  connections?: number;
  /** A dispatcher of your own (tests); the client then leaves closing it to you. */
  dispatcher?: Dispatcher;
  /** Wall clock, for `Retry-After` dates. */
  now?: Now;
}

/** Bodies longer than this are not kept (Verbose answers are a few hundred bytes). */
const MAX_BODY_CHARS = 64 * 1024;
const SNIPPET_CHARS = 200;

interface Answer {
  kind: 'answer';
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** False when the body broke off (connection reset, length mismatch, timeout while reading). */
  complete: boolean;
}

/**
 * The Verbose API over undici with keep-alive connections. Every answer is classified, never thrown: HTML error
 * pages, empty and truncated bodies included. The API key is sent in the Authorization header only and is
 * scrubbed from every text this client produces (undici errors are reduced to their code and message).
 */
export class VerboseClient implements ContactSender {
  private readonly base: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly scrub: (text: string) => string;
  private readonly now: Now;

  constructor(private readonly options: VerboseClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connections: options.connections ?? 8,
        keepAliveTimeout: 30_000,
        connectTimeout: Math.min(options.requestTimeoutMs, 10_000),
        headersTimeout: options.requestTimeoutMs,
        bodyTimeout: options.requestTimeoutMs,
      });
    this.scrub = scrubber([options.apiKey]);
    this.now = options.now ?? Date.now;
  }

  async upsert(
    target: ListTarget,
    contacts: readonly VerboseContact[],
    signal?: AbortSignal,
  ): Promise<UpsertOutcome> {
    const answer = await this.call(
      'POST',
      '/api/public/contacts',
      JSON.stringify({ contacts, ...target }),
      signal,
    );
    return answer.kind === 'transient' ? answer : this.classifyUpsert(answer);
  }

  /** `GET /api/public/me`: checks the key and names its workspace. */
  async me(signal?: AbortSignal): Promise<MeOutcome> {
    const answer = await this.call('GET', '/api/public/me', undefined, signal);
    if (answer.kind === 'transient') return answer;
    if (answer.status === 401 || answer.status === 403)
      return { kind: 'unauthorized', status: answer.status };
    const body = parseJson(answer.text);
    const workspace =
      isObject(body) && body.ok === true && isObject(body.workspace) ? body.workspace : undefined;
    if (answer.status >= 200 && answer.status < 300 && workspace) {
      return {
        kind: 'ok',
        workspace: { id: String(workspace.id ?? ''), name: String(workspace.name ?? '') },
      };
    }
    if (isRedirect(answer.status)) return this.transient(answer, this.redirected(answer, '/api/public/me'));
    if (answer.status >= 200 && answer.status < 300) {
      return this.transient(
        answer,
        'an answer that is not a Verbose workspace (is verbose.url the API base URL?)',
      );
    }
    return this.transient(
      answer,
      `${this.apiText(answer, body) ?? 'no error text'}${urlHint(answer.status)}`,
    );
  }

  /** Closes the keep-alive connections (only those of a dispatcher this client made). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private classifyUpsert(answer: Answer): UpsertOutcome {
    const { status } = answer;
    const body = answer.complete ? parseJson(answer.text) : undefined;
    if (status >= 200 && status < 300) {
      if (isObject(body) && body.ok === true) {
        const accepted: UpsertOutcome = { kind: 'accepted', status };
        if (typeof body.imported === 'number') accepted.imported = body.imported;
        if (typeof body.skipped === 'number') accepted.skipped = body.skipped;
        if (typeof body.list_id === 'string') accepted.listId = body.list_id;
        return accepted;
      }
      // Undocumented, but the envelope says the request was refused: treat it as the 400 it should have been.
      if (isObject(body) && body.ok === false)
        return { kind: 'invalid', status, error: this.errorText(answer, body) };
      return this.transient(answer, this.notAnEnvelope(answer, body));
    }
    if (isRedirect(status)) return this.transient(answer, this.redirected(answer, '/api/public/contacts'));
    if (status === 400 || status === 422)
      return { kind: 'invalid', status, error: this.errorText(answer, body) };
    if (status === 401 || status === 403) return { kind: 'unauthorized', status };
    if (status === 413) return { kind: 'tooLarge', status, error: this.errorText(answer, body) };
    return this.transient(answer, `${this.apiText(answer, body) ?? 'no error text'}${urlHint(status)}`);
  }

  /** A success status whose body is not the envelope: said precisely, since each has its own cause. */
  private notAnEnvelope(answer: Answer, body: unknown): string {
    if (!answer.complete) return 'a success status, but the answer is incomplete';
    if (answer.text.trim() === '') return 'a success status with an empty body instead of a Verbose answer';
    if (body === undefined && /^\s*[[{]/.test(answer.text)) {
      return 'a success status with JSON cut short instead of a Verbose answer';
    }
    const what = body === undefined ? `not JSON: ${this.apiText(answer, body) ?? ''}` : 'JSON without "ok"';
    return `a success status without a Verbose answer (${what}); is verbose.url the API base URL?`;
  }

  /** Redirects are not followed: the Authorization header would go along to wherever they point. */
  private redirected(answer: Answer, path: string): string {
    const location = answer.headers.location;
    const target = Array.isArray(location) ? location[0] : location;
    if (!target) return 'a redirect without a Location header (is verbose.url the API base URL?)';
    const base = target.endsWith(path) ? target.slice(0, -path.length) : undefined;
    return (
      `redirected to ${target}; redirects are not followed (the API key would go along): ` +
      (base ? `set verbose.url to ${base}` : 'set verbose.url to the base URL it redirects to')
    );
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Answer | Transient> {
    const timeout = AbortSignal.timeout(this.options.requestTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.apiKey}`,
      accept: 'application/json',
      'user-agent': 'verbose-sync',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Dispatcher.ResponseData;
    try {
      response = await request(`${this.base}${path}`, {
        method,
        headers,
        body: body ?? null,
        signal: combined,
        dispatcher: this.dispatcher,
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      return this.failure(error, timeout.aborted);
    }
    const { text, complete } = await readBody(response.body);
    if (signal?.aborted) throw signal.reason;
    return { kind: 'answer', status: response.statusCode, headers: response.headers, text, complete };
  }

  private failure(error: unknown, timedOut: boolean): Transient {
    const code = (error as { code?: unknown } | undefined)?.code;
    const isTimeout =
      timedOut ||
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT';
    if (isTimeout) {
      return {
        kind: 'transient',
        status: 'timeout',
        detail: `no answer within ${this.options.requestTimeoutMs} ms`,
      };
    }
    // Only the code and message: undici errors can carry the request, headers included.
    const message = errorMessage(error);
    const detail = this.scrub(
      `${typeof code === 'string' ? `${code}: ` : ''}${message}`.slice(0, SNIPPET_CHARS),
    );
    return { kind: 'transient', status: 'network', detail: `connection failed: ${detail}` };
  }

  private transient(answer: Answer, what: string): Transient {
    const outcome: Transient = {
      kind: 'transient',
      status: answer.status,
      detail: this.scrub(`HTTP ${answer.status}: ${what}${answer.complete ? '' : ' (the body broke off)'}`),
    };
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after'], this.now());
    if (retryAfterMs !== undefined) outcome.retryAfterMs = retryAfterMs;
    return outcome;
  }

  /** The API's `error` text, else a short, readable piece of whatever came back (undefined when nothing did). */
  private apiText(answer: Answer, body: unknown): string | undefined {
    if (isObject(body) && typeof body.error === 'string' && body.error.trim() !== '')
      return this.scrub(body.error);
    const snippet = readable(answer.text);
    return snippet === '' ? undefined : this.scrub(snippet);
  }

  /** For rejects: the API's own text when it gave one, else what came back with its status. */
  private errorText(answer: Answer, body: unknown): string {
    if (isObject(body) && typeof body.error === 'string' && body.error.trim() !== '')
      return this.scrub(body.error);
    const text = this.apiText(answer, body);
    return text === undefined ? `HTTP ${answer.status} with no error text` : `HTTP ${answer.status}: ${text}`;
  }
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

function urlHint(status: number): string {
  return status === 404 || status === 405 ? ' (is verbose.url the API base URL?)' : '';
}

async function readBody(body: Dispatcher.ResponseData['body']): Promise<{ text: string; complete: boolean }> {
  let text = '';
  try {
    // Read to the end even past the cap, so the connection stays usable for keep-alive.
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (text.length < MAX_BODY_CHARS) text += chunk.toString('utf8');
    }
    return { text: text.slice(0, MAX_BODY_CHARS), complete: true };
  } catch {
    return { text, complete: false };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An HTML page's title, or the text with tags and runs of spaces removed, cut short. */
function readable(text: string): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1];
  const plain = (title ?? text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  return plain.length > SNIPPET_CHARS ? `${plain.slice(0, SNIPPET_CHARS)}…` : plain;
}

/** `Retry-After` as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, now: number): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  const at = /^\d+(\.\d+)?$/.test(value) ? now + Math.round(Number(value) * 1000) : Date.parse(value);
  // One odd answer (a day, a date far ahead) must not stop all delivery: wait at most this long, then ask again.
  return Number.isNaN(at) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now));
}

const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * A local stand-in for the Verbose API (see VERBOSE_API.md): `GET /api/public/me` and
 * `POST /api/public/contacts` over real HTTP, with faults on demand and an inspection endpoint.
 * Measured speed: see README.md beside this file.
 */
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ContactsRequest, checkContacts, readContactsRequest } from './contactsRequest.js';
import { answerControl } from './control.js';
import { applyFaultChanges, type FaultChanges, FaultPlan, type FaultSettings, NO_FAULTS } from './faults.js';
import { malformedAnswer, sendMalformed } from './malformed.js';
import { RequestLog, type RequestRecord } from './requestLog.js';
import { ContactStore, type ListSeed } from './store.js';
import { type Answer, type Checked, failure, parseJson, receive, send } from './wire.js';

export type { FaultChanges, FaultSettings, MalformedKind } from './faults.js';
export type { RequestRecord, RequestStats } from './requestLog.js';
export type { ContactRecord, ListRecord, ListSeed } from './store.js';
export type { ContactStore, RequestLog };

export interface Workspace {
  id: string;
  name: string;
}

export interface SimulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The one accepted key. Default `as_test_key`. */
  apiKey?: string;
  /** What `GET /api/public/me` answers. */
  workspace?: Workspace;
  /** Lists that exist from the start (and again after a reset). */
  lists?: ListSeed[];
  /** Faults from the start; `reset()` comes back to these. */
  faults?: FaultChanges;
  /** How many request log entries are kept (the counters cover all). Default 10,000. */
  requestLogLimit?: number;
  /** The random source for fault decisions and jitter; Math.random by default. */
  random?: () => number;
  /** The clock (ms since the epoch) for the rate limiter, `revokeAt` and log times; Date.now by default. */
  now?: () => number;
}

export interface Simulator {
  /** Base URL without a trailing slash, like http://127.0.0.1:PORT. */
  readonly url: string;
  readonly store: ContactStore;
  readonly requests: RequestLog;
  readonly faults: Readonly<FaultSettings>;
  /** Changes some fault settings while running; throws (changing nothing) on a bad value. */
  setFaults(changes: FaultChanges): Readonly<FaultSettings>;
  /** Every request from now on gets 401, as when the key is revoked in Verbose. */
  revokeKey(): void;
  /** Forgets contacts, lists (but the seeded ones) and the request log; faults go back to the start options. */
  reset(): void;
  /** Stops listening and drops open connections. Safe to call twice. */
  close(): Promise<void>;
}

export const DEFAULT_API_KEY = 'as_test_key';
const DEFAULT_WORKSPACE: Workspace = { id: 'ws_simulator', name: 'Verbose simulator' };

const UNAUTHORIZED = 'Invalid or missing API key';
const BAD_GATEWAY_PAGE =
  '<!DOCTYPE html><html><head><title>502: BAD_GATEWAY</title></head>' +
  '<body><h1>502: BAD_GATEWAY</h1><p>Code: <code>FUNCTION_INVOCATION_FAILED</code></p></body></html>';

type Endpoint = 'me' | 'contacts';
const API_ROUTES: Record<string, { method: string; endpoint: Endpoint }> = {
  '/api/public/me': { method: 'GET', endpoint: 'me' },
  '/api/public/contacts': { method: 'POST', endpoint: 'contacts' },
};

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const apiKey = options.apiKey ?? DEFAULT_API_KEY;
  const workspace = options.workspace ?? DEFAULT_WORKSPACE;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const initialFaults = applyFaultChanges(NO_FAULTS, options.faults ?? {});
  const logLimit = options.requestLogLimit ?? 10_000;
  if (!Number.isSafeInteger(logLimit) || logLimit < 1) {
    throw new Error(`requestLogLimit must be a whole number, 1 or more, got ${logLimit}`);
  }
  const store = new ContactStore(options.lists ?? []);
  const log = new RequestLog(logLimit);
  let plan = new FaultPlan(initialFaults, random, now);
  // Aborted on close, so requests waiting out their latency end with the server instead of after it.
  const closing = new AbortController();

  const authorised = (header: string | undefined): boolean => {
    const key = header === undefined ? undefined : /^Bearer +(\S+) *$/i.exec(header)?.[1];
    return key === apiKey && !plan.keyRevoked();
  };

  async function answerApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const started = performance.now();
    const entry: RequestRecord = {
      time: now(),
      method: req.method ?? 'GET',
      path,
      status: null,
      contacts: 0,
      list: null,
      listId: null,
      durationMs: 0,
    };
    /** Answers and logs the request; no answer destroys the connection instead. */
    const finish = (answer: Answer | undefined): void => {
      if (answer === undefined || req.socket.destroyed) req.socket.destroy();
      else send(res, answer);
      entry.status = answer === undefined || res.destroyed ? null : answer.status;
      entry.durationMs = performance.now() - started;
      log.record(entry);
    };

    const received = await receive(req, plan.settings.maxBodyBytes);
    const route = API_ROUTES[path];
    if (!route) return finish(failure(404, `Not found: ${entry.method} ${path}`));
    if (route.method !== entry.method) {
      return finish({
        ...failure(405, `Method not allowed: use ${route.method}`),
        headers: { allow: route.method },
      });
    }
    let request: Checked<ContactsRequest> | undefined;
    if (route.endpoint === 'contacts' && received.text !== undefined) {
      request = parseContactsRequest(received.text);
      if (request.ok) {
        entry.contacts = request.value.contacts.length;
        entry.list = request.value.list ?? null;
        entry.listId = request.value.listId ?? null;
      }
    }

    const latencyMs = plan.latencyMs();
    if (latencyMs > 0) {
      try {
        await sleep(latencyMs, undefined, { signal: closing.signal });
      } catch {
        return finish(undefined);
      }
    }
    if (plan.drops()) return finish(undefined);
    if (plan.answersHtmlError()) return finish({ status: 502, body: BAD_GATEWAY_PAGE });
    const malformed = plan.answersMalformed();
    if (malformed !== undefined) {
      const answer = malformedAnswer(malformed, req.headers.host ?? '127.0.0.1', path);
      await sendMalformed(res, answer);
      // An answer cut off is logged like a dropped connection: the client never got one.
      entry.status = answer.cutAfter === undefined ? answer.status : null;
      entry.malformed = malformed;
      entry.durationMs = performance.now() - started;
      log.record(entry);
      return;
    }
    if (received.text === undefined) {
      return finish(failure(413, `Payload too large: ${received.bytes} bytes, at most ${received.limit}`));
    }
    const rate = plan.admit();
    const rateHeaders: OutgoingHttpHeaders = rate
      ? { 'x-ratelimit-limit': rate.limit, 'x-ratelimit-remaining': rate.remaining }
      : {};
    if (rate && !rate.allowed) {
      return finish({
        ...failure(429, 'Too many requests'),
        headers: { ...rateHeaders, 'retry-after': String(rate.retryAfterSeconds) },
      });
    }
    if (plan.failsInternally()) return finish(failure(500, 'Internal error'));
    if (!authorised(req.headers.authorization)) {
      return finish({ ...failure(401, UNAUTHORIZED), headers: rateHeaders });
    }

    const answer =
      route.endpoint === 'me'
        ? { status: 200, body: { ok: true, workspace } }
        : upsertContacts(request ?? { ok: false, error: 'Invalid JSON body' }, entry);
    if (plan.losesResponse()) return finish(undefined);
    finish({ ...answer, headers: rateHeaders });
  }

  function upsertContacts(request: Checked<ContactsRequest>, entry: RequestRecord): Answer {
    if (!request.ok) return failure(400, request.error);
    const { contacts, list, listId } = request.value;
    const { maxBatchSize } = plan.settings;
    if (maxBatchSize !== null && contacts.length > maxBatchSize) {
      return failure(413, `Payload too large: ${contacts.length} contacts, at most ${maxBatchSize}`);
    }
    const checked = checkContacts(contacts);
    if (!checked.ok) return failure(400, checked.error);
    if (listId !== undefined && !store.hasList(listId)) return failure(400, `list_id not found: ${listId}`);
    // The list is only created once the whole request is known to be good, so a 400 leaves no trace.
    const targetId = list === undefined ? listId : store.findOrCreateList(list);
    entry.listId = targetId ?? null;
    const outcome = store.upsert(checked.value, targetId);
    const body = { ok: true, imported: outcome.imported, skipped: outcome.skipped };
    return { status: 200, body: targetId === undefined ? body : { ...body, list_id: targetId } };
  }

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const answer = path.startsWith('/_simulator/')
      ? receive(req, null).then((body) =>
          send(res, answerControl(simulator, workspace, method, path, body.text)),
        )
      : answerApi(req, res, path);
    answer.catch((error: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, failure(500, `Simulator fault: ${(error as Error).message}`));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `Cannot start the Verbose simulator on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ` +
            (error.code === 'EADDRINUSE' ? 'the port is in use; pick another with --port' : error.message),
        ),
      ),
    );
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  const simulator: Simulator = {
    url: `http://${host}:${address.port}`,
    store,
    requests: log,
    get faults() {
      return plan.settings;
    },
    setFaults: (changes) => plan.change(changes),
    revokeKey() {
      plan.change({ revokeAt: now() });
    },
    reset() {
      store.clear();
      log.clear();
      plan = new FaultPlan(initialFaults, random, now);
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
  return simulator;
}

function parseContactsRequest(text: string): Checked<ContactsRequest> {
  const body = parseJson(text);
  return body.ok ? readContactsRequest(body.value) : body;
}

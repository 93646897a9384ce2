/**
 * The consumers verbose-sync is measured beside, each run as its own process (forked by `peerProcess.ts`) so
 * that it has a core of its own like the daemon, and its memory is its own:
 *
 * - `noop`: the ceiling. pg-logical-replication with the daemon's slot and service options (pgoutput
 *   protocol 1, messages on, flow control on, the library's acknowledge timer off), a handler that does
 *   nothing but count, and a status update with the last commit at most every 100 ms.
 * - `naive`: the same stream, each change POSTed as its own request as soon as it arrives (with `fetch`,
 *   awaiting it, retrying after `Retry-After` when refused): what a user writes in an afternoon.
 * - `keyset`: the ceiling of a full resync: the table read in primary-key order, `chunkSize` rows a query.
 * - `naive-copy`: the naive full resync: the same read, each row POSTed as its own request.
 */
import pg from 'pg';
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';

export type PeerKind = 'noop' | 'naive' | 'keyset' | 'naive-copy';

export interface PeerOptions {
  kind: PeerKind;
  databaseUrl: string;
  slot?: string;
  publication?: string;
  /** Finish once this many changes (or rows) were handled. */
  expect: number;
  /** Finish after this long even when fewer were handled (the naive peers are slow). */
  timeLimitMs: number;
  verboseUrl?: string;
  list?: string;
  /** For the keyset kinds: rows per query. */
  chunkSize?: number;
  /** `noop`: note commit-to-received latency from the commit time the writer put in `first_name`. */
  latency?: boolean;
}

export interface PeerReport {
  /** When streaming (or reading) began, ms since the epoch. */
  startedAt: number;
  /** When the last change was handled. */
  lastAt: number;
  changes: number;
  requests: number;
  byStatus: Record<string, number>;
  latenciesMs: number[];
  /** All `expect` changes were handled (not cut short by the time limit). */
  complete: boolean;
}

export type PeerMessage = { kind: 'started'; at: number } | { kind: 'finished'; report: PeerReport };

interface Contact {
  phone: string;
  first_name?: string;
  last_name?: string;
  source?: string;
}

class Peer {
  readonly report: PeerReport = {
    startedAt: 0,
    lastAt: 0,
    changes: 0,
    requests: 0,
    byStatus: {},
    latenciesMs: [],
    complete: false,
  };
  private readonly deadline: number;
  /** The 'started' message, awaited before the report so that the two cannot cross. */
  announced: Promise<void> = Promise.resolve();
  private finished = false;
  private resolveFinished!: () => void;
  readonly done = new Promise<void>((resolve) => {
    this.resolveFinished = resolve;
  });

  constructor(readonly options: PeerOptions) {
    this.deadline = Date.now() + options.timeLimitMs;
  }

  get over(): boolean {
    return this.finished || Date.now() >= this.deadline;
  }

  started(): void {
    this.report.startedAt = Date.now();
    this.announced = send({ kind: 'started', at: this.report.startedAt });
    setTimeout(() => this.finish(), this.options.timeLimitMs).unref();
  }

  handled(count = 1): void {
    this.report.changes += count;
    this.report.lastAt = Date.now();
    if (this.report.changes >= this.options.expect) {
      this.report.complete = true;
      this.finish();
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveFinished();
  }

  /** POSTs one contact, again after `Retry-After` (or a second) until it is accepted or time is up. */
  async post(contact: Contact): Promise<void> {
    const body = JSON.stringify({ contacts: [contact], list: this.options.list });
    while (!this.over) {
      let status = 'network';
      let retryAfter = 1;
      try {
        const response = await fetch(`${this.options.verboseUrl}/api/public/contacts`, {
          method: 'POST',
          headers: { authorization: 'Bearer as_test_key', 'content-type': 'application/json' },
          body,
        });
        await response.text();
        status = String(response.status);
        retryAfter = Number(response.headers.get('retry-after') ?? '1');
      } catch {
        // The simulator went away: counted, and tried again like a refusal.
      }
      this.report.requests += 1;
      this.report.byStatus[status] = (this.report.byStatus[status] ?? 0) + 1;
      if (status.startsWith('2')) return;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, retryAfter) * 1000));
    }
  }
}

async function stream(peer: Peer): Promise<void> {
  const { options } = peer;
  const service = new LogicalReplicationService(
    { connectionString: options.databaseUrl },
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
  );
  const plugin = new PgoutputPlugin({
    protoVersion: 1,
    publicationNames: [options.publication ?? 'bench'],
    messages: true,
  });
  let acknowledgedAt = 0;
  service.on('error', (error: Error) => process.stderr.write(`peer stream error: ${error.message}\n`));
  service.on('start', () => peer.started());
  service.on('data', async (lsn: string, message: Pgoutput.Message) => {
    if (peer.over) return;
    if (message.tag === 'insert' || message.tag === 'update') {
      const row = message.new as Record<string, string | null>;
      if (options.kind === 'naive') await peer.post(contactOf(row));
      else if (options.latency) peer.report.latenciesMs.push(Date.now() - Number(row.first_name));
      if (!peer.over) peer.handled();
    } else if (message.tag === 'commit') {
      const now = Date.now();
      if (now - acknowledgedAt >= 100 || peer.over) {
        acknowledgedAt = now;
        await service.acknowledge(lsn);
      }
    }
  });
  const subscribed = service.subscribe(plugin, options.slot ?? 'bench', '0/0').catch((error: unknown) => {
    if (!peer.over) throw error;
  });
  await Promise.race([peer.done, subscribed]);
  peer.finish();
  // Not `subscribed` again: once stopped, the library may leave it pending forever.
  await service.stop();
}

async function copy(peer: Peer): Promise<void> {
  const { options } = peer;
  const sql = new pg.Client(options.databaseUrl);
  await sql.connect();
  const chunkSize = options.chunkSize ?? 5000;
  peer.started();
  let after = 0;
  try {
    while (!peer.over) {
      const { rows } = await sql.query<Record<string, string | null> & { id: string }>(
        'SELECT * FROM contacts WHERE id > $1 ORDER BY id LIMIT $2',
        [after, chunkSize],
      );
      if (rows.length === 0) break;
      after = Number(rows[rows.length - 1]!.id);
      if (options.kind === 'keyset') {
        peer.handled(rows.length);
        continue;
      }
      for (const row of rows) {
        await peer.post(contactOf(row));
        if (peer.over) break;
        peer.handled();
      }
    }
  } finally {
    peer.finish();
    await sql.end();
  }
}

function contactOf(row: Record<string, string | null>): Contact {
  const contact: Contact = { phone: String(row.phone) };
  if (row.first_name) contact.first_name = row.first_name;
  if (row.last_name) contact.last_name = row.last_name;
  if (row.source) contact.source = row.source;
  return contact;
}

/** Resolves once the message is handed to the IPC channel (a large report takes a while to write). */
function send(message: PeerMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return resolve();
    process.send(message, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

async function main(): Promise<void> {
  // The bench went away (Ctrl-C): nobody is left to read the report.
  process.once('disconnect', () => process.exit(0));
  const options = JSON.parse(process.argv[2] ?? '{}') as PeerOptions;
  const peer = new Peer(options);
  await (options.kind === 'keyset' || options.kind === 'naive-copy' ? copy(peer) : stream(peer));
  await peer.announced;
  await send({ kind: 'finished', report: peer.report });
}

main().then(
  () => process.disconnect?.(),
  (error: unknown) => {
    process.stderr.write(`peer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

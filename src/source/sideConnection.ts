import pg from 'pg';
import { sqlState } from './setup.js';

/**
 * A normal connection beside the replication one, for heartbeats, slot checks and type lookups; reconnects on
 * next use after any failure.
 */
export class SideConnection {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private closed = false;

  /** @param onShutdown called when the server says it is shutting down (or terminated this connection). */
  constructor(
    private readonly url: string,
    private readonly onShutdown: () => void,
  ) {}

  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    let client: pg.Client;
    try {
      client = await this.connect();
    } catch (error) {
      this.notice(error);
      throw error;
    }
    try {
      return (await client.query<R>(text, values)).rows;
    } catch (error) {
      const code = sqlState(error);
      if (!code || code.startsWith('08') || code.startsWith('57')) this.discard(client);
      this.notice(error);
      throw error;
    }
  }

  private notice(error: unknown): void {
    const code = sqlState(error);
    // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (shutting down or starting up).
    if (!this.closed && (code === '57P01' || code === '57P02' || code === '57P03')) this.onShutdown();
  }

  async close(): Promise<void> {
    this.closed = true;
    // A connection attempt in progress ends itself when it sees `closed`.
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private connect(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('the change stream is stopped'));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.url,
        application_name: 'verbose-sync heartbeat',
        connectionTimeoutMillis: 10_000,
        query_timeout: 15_000,
        keepAlive: true,
      });
      client.on('error', (error) => {
        this.discard(client);
        this.notice(error);
      });
      client.on('end', () => this.discard(client));
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => {});
        throw error;
      } finally {
        this.connecting = undefined;
      }
      if (this.closed) {
        await client.end().catch(() => {});
        throw new Error('the change stream is stopped');
      }
      this.client = client;
      return client;
    })();
    return this.connecting;
  }

  private discard(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    client.end().catch(() => {});
  }
}

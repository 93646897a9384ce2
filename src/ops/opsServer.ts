import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

/** The answer of a probe: ok, or the reason it is not (shown to whoever curls the endpoint). */
export interface ProbeResult {
  ok: boolean;
  detail: Record<string, unknown>;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** Liveness: the process is alive and not wedged. */
  health: () => ProbeResult;
  /** Readiness: stream connected and Verbose reachable. */
  readiness: () => ProbeResult;
}

export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

/** /healthz, /readyz and /metrics, as Kubernetes probes and Prometheus expect them. */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const probe = path === '/healthz' ? options.health : path === '/readyz' ? options.readiness : undefined;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (probe) {
      const result = probe();
      response
        .writeHead(result.ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: result.ok ? 'ok' : 'unavailable', ...result.detail }));
      return;
    }
    if (path === '/metrics') {
      options.metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
      return;
    }
    response
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found: try /healthz, /readyz or /metrics\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `http.port ${options.port} is already in use on ${options.host}; choose another in the config`,
            )
          : error,
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

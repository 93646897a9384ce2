import type { TestProject } from 'vitest/node';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/embedded/embeddedPostgres.js';

let server: EmbeddedPostgres | undefined;

/** One real PostgreSQL (wal_level=logical) for the whole run; each test file makes its own database in it. */
export async function setup(project: TestProject) {
  server = await startEmbeddedPostgres();
  project.provide('postgresUrl', server.url());
}

export async function teardown() {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

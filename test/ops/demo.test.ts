import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from '../support/cli.js';
import { eventually } from '../support/pipeline.js';

describe('verbose-sync demo', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('resyncs, shows live changes reaching Verbose, and on Ctrl-C prints a summary and exits 0', async () => {
    const demo = startCli(['demo']);
    try {
      const live = await eventually(
        () => {
          const at = demo.stdout().indexOf('live changes');
          // Two changes shown reaching Verbose after the live part began.
          return at >= 0 && demo.stdout().slice(at).split('→ Verbose:').length > 2 ? at : undefined;
        },
        90_000,
        'live changes reaching Verbose',
      ).catch((error: Error) => {
        throw new Error(`${error.message}; the demo printed:\n${demo.stdout()}\n${demo.stderr()}`);
      });
      demo.child.kill('SIGINT');
      expect((await demo.exited).code).toBe(0);
      const stdout = demo.stdout();

      expect(stdout.slice(0, live)).toMatch(/✓ \d+ contacts in Verbose after/);
      expect(stdout.slice(live)).toMatch(/CRM: +(UPDATE|INSERT) partner \d+/);
      const summary = stdout.slice(stdout.indexOf('Summary'));
      expect(summary).toMatch(/CRM rows +\d+ in res_partner/);
      expect(summary).toMatch(/contacts in Verbose +\d+/);
      expect(summary).toMatch(/requests to Verbose +\d+ \(200: \d+\)/);
      expect(summary).toMatch(/rejected +\d+, kept in .*rejects\.jsonl/);
      expect(summary).toContain('not a phone number');
      // The daemon's own JSON logs go to a file, named on the screen, not to the terminal.
      expect(stdout).not.toMatch(/^\{"level"/m);
      dir = /everything lives in (\S+)/.exec(stdout)?.[1];
      const log = await readFile(join(dir!, 'daemon.log'), 'utf8');
      expect(log).toContain('"msg":"streaming"');
      // The embedded server's data is removed; what is worth a look stays.
      await expect(access(join(dir!, 'postgres'))).rejects.toThrow();
      await access(join(dir!, 'state', 'checkpoint.json'));
    } finally {
      demo.child.kill('SIGKILL');
    }
  }, 150_000);
});

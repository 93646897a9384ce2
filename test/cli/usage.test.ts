import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

/** A mistyped command line exits 2 with what is wrong and where to look, before touching anything. */
describe('verbose-sync usage errors', () => {
  it.each([
    [['stauts'], /unknown command "stauts"; expected one of .*status/],
    [['rejects', '--retry', '--dry-run'], /--dry-run does not apply to rejects/],
    [['run', '--bogus'], /bogus/],
  ])('%j exits 2 and points to --help', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Run verbose-sync --help for usage.');
    expect(result.stdout).toBe('');
  });
});

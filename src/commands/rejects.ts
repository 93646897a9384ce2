/** Not built yet: `verbose-sync rejects` arrives with its issue; until then it says so rather than pretend. */
export async function runRejects(..._args: unknown[]): Promise<number> {
  process.stderr.write('verbose-sync rejects is not built yet in this version.\n');
  return 1;
}

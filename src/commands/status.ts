/** Not built yet: `verbose-sync status` arrives with its issue; until then it says so rather than pretend. */
export async function runStatus(..._args: unknown[]): Promise<number> {
  process.stderr.write('verbose-sync status is not built yet in this version.\n');
  return 1;
}

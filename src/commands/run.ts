/** Not built yet: `verbose-sync run` arrives with its issue; until then it says so rather than pretend. */
export async function runDaemon(..._args: unknown[]): Promise<number> {
  process.stderr.write('verbose-sync run is not built yet in this version.\n');
  return 1;
}

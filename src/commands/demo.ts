/** Not built yet: `verbose-sync demo` arrives with its issue; until then it says so rather than pretend. */
export async function runDemo(..._args: unknown[]): Promise<number> {
  process.stderr.write('verbose-sync demo is not built yet in this version.\n');
  return 1;
}

/** Not built yet: `verbose-sync validate` arrives with its issue; until then it says so rather than pretend. */
export async function runValidate(..._args: unknown[]): Promise<number> {
  process.stderr.write('verbose-sync validate is not built yet in this version.\n');
  return 1;
}

/** Whatever was thrown, as an Error (a thrown string or object keeps its text). */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The text of whatever was thrown. A failed connection to a host with several addresses throws an
 * AggregateError with an empty message: its errors' texts, else its code, say what happened.
 */
export function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map((e: unknown) => errorMessage(e)))].join('; ');
  }
  const message = asError(error).message;
  return message || (error as { code?: string } | undefined)?.code || 'unknown error';
}

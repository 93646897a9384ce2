import { getHeapStatistics } from 'node:v8';

/** The process's own live heap (modules, phone metadata, schemas), measured: about 30 MB. */
const BASE_MB = 30;
/**
 * Live heap for each contact of `max_pending_contacts` when everything is full: a waiting contact in the
 * coalescer (about 0.6 kB) and one phone in each memory of recent phones (about 0.35 kB each), measured with
 * `--expose-gc` on the real classes; rounded up for longer field values.
 */
const PER_CONTACT_KB = 1.4;

export interface HeapShortfall {
  /** The live heap `max_pending_contacts` can take, in MB. */
  liveMb: number;
  /** The heap limit it should have: twice the live heap, so that collections are not back to back. */
  neededMb: number;
  limitMb: number;
}

/**
 * Says when the heap limit (from `--max-old-space-size`, or the container's memory) is too small for
 * `max_pending_contacts`: a full coalescer would then either collect garbage all the time or run out of heap.
 */
export function heapShortfall(
  maxPendingContacts: number,
  heapLimitBytes = getHeapStatistics().heap_size_limit,
): HeapShortfall | undefined {
  const liveMb = Math.ceil(BASE_MB + (maxPendingContacts * PER_CONTACT_KB) / 1024);
  const limitMb = Math.floor(heapLimitBytes / 2 ** 20);
  const neededMb = 2 * liveMb;
  return limitMb < neededMb ? { liveMb, neededMb, limitMb } : undefined;
}

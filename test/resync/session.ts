/**
 * The settings of the replication session (src/source/changeStream.ts). The daemon opens the resync's pool
 * with them so a SELECT prints values exactly as the stream does; the tests do the same.
 */
export const REPLICATION_SESSION =
  '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=1';

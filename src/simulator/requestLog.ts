import type { MalformedKind } from './faults.js';

/** One API request as the simulator saw it. */
export interface RequestRecord {
  /** When it arrived, in ms since the epoch (the simulator's clock). */
  time: number;
  method: string;
  path: string;
  /** null: the connection was destroyed without an answer (a drop or a lost response). */
  status: number | null;
  /** Contacts in the body (0 when the body was not a readable contacts request). */
  contacts: number;
  /** The list name the request targeted, if any. */
  list: string | null;
  /** The list id the request targeted, or the id its list name resolved to. */
  listId: string | null;
  durationMs: number;
  /** Set when the request was given a malformed answer instead of being handled (nothing was stored). */
  malformed?: MalformedKind;
}

export interface RequestStats {
  total: number;
  /** Requests per status code; connections destroyed without an answer count under "dropped". */
  byStatus: Record<string, number>;
  /** Contacts in requests answered 200 (not malformed answers), repeats within a request included. */
  contactsAccepted: number;
  rateLimited: number;
}

/**
 * The request log. The counters cover every request since the last reset; the entries only the newest
 * `limit`, so a long benchmark does not grow the simulator without bound.
 */
export class RequestLog {
  private readonly recent: RequestRecord[] = [];
  private readonly statusCounts = new Map<string, number>();
  private total = 0;
  private accepted = 0;

  constructor(readonly limit = 10_000) {}

  record(entry: RequestRecord): void {
    this.recent.push(entry);
    // Trimmed in chunks rather than per request, so recording stays O(1) amortised.
    if (this.recent.length >= 2 * this.limit) this.recent.splice(0, this.recent.length - this.limit);
    const key = entry.status === null ? 'dropped' : String(entry.status);
    this.statusCounts.set(key, (this.statusCounts.get(key) ?? 0) + 1);
    this.total += 1;
    if (entry.status === 200 && entry.malformed === undefined) this.accepted += entry.contacts;
  }

  /** The newest entries, oldest first. */
  entries(): RequestRecord[] {
    return this.recent.slice(-this.limit);
  }

  count(): number {
    return this.total;
  }

  countsByStatus(): Record<string, number> {
    return Object.fromEntries(this.statusCounts);
  }

  countOf(status: number | 'dropped'): number {
    return this.statusCounts.get(String(status)) ?? 0;
  }

  contactsAccepted(): number {
    return this.accepted;
  }

  rateLimited(): number {
    return this.countOf(429);
  }

  stats(): RequestStats {
    return {
      total: this.total,
      byStatus: this.countsByStatus(),
      contactsAccepted: this.accepted,
      rateLimited: this.rateLimited(),
    };
  }

  clear(): void {
    this.recent.length = 0;
    this.statusCounts.clear();
    this.total = 0;
    this.accepted = 0;
  }
}

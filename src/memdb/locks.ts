/**
 * The lock table (spec 6.2): per node, in RAM, `priv/lock/<name>` -> when this
 * node first saw the current incarnation, by that incarnation's checksum.
 * Times are passed in; the table never reads a clock.
 */

/** A lock expires when strictly more than this many seconds passed. */
export const LOCK_TIMEOUT = 120;

interface LockRecord {
  firstSeen: number;
  checksum: string;
}

export class LockTable {
  private readonly records = new Map<string, LockRecord>();

  /** Starts (or restarts) the clock of `path` for the incarnation `checksum`. */
  touch(path: string, checksum: string, now: number): void {
    this.records.set(path, { firstSeen: now, checksum });
  }

  drop(path: string): void {
    this.records.delete(path);
  }

  has(path: string): boolean {
    return this.records.has(path);
  }

  /** "Is expired?" of spec 6.2: a new checksum restarts the clock. */
  isExpired(path: string, checksum: string, now: number): boolean {
    const r = this.records.get(path);
    if (!r || r.checksum !== checksum) {
      this.touch(path, checksum, now);
      return false;
    }
    return now > r.firstSeen && now - r.firstSeen > LOCK_TIMEOUT;
  }

  /**
   * Rebuilds from the locks present after a reload. An unchanged incarnation
   * keeps its first-seen time (the original always restarts it, Quirk Q5).
   */
  rebuild(locks: Iterable<[string, string]>, now: number): void {
    const old = new Map(this.records);
    this.records.clear();
    for (const [path, checksum] of locks) {
      const r = old.get(path);
      this.records.set(path, r && r.checksum === checksum ? r : { firstSeen: now, checksum });
    }
  }
}

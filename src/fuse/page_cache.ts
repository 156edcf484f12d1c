/**
 * When a reader may use the kernel's page cache. The kernel keeps one file
 * size per inode, and a writer moves it before anything is committed:
 * `open(O_TRUNC)` sets it to 0 and a write past it extends it. A reader going
 * through the page cache at that moment would read an empty, NUL-padded or
 * torn file. So, per inode:
 * - a reader may use the page cache only while no writer is open or waiting
 *   and no invalidation is under way; otherwise it gets a direct-I/O handle
 *   on a snapshot of the committed content;
 * - a writer's open waits (up to `WRITER_WAIT_MS`) until the page-cache
 *   readers that are open have closed.
 * Readers of files nobody writes keep the fast cached path.
 */

/** A writer waits at most this long for open page-cache readers to close. */
export const WRITER_WAIT_MS = 1000;

/** A timer of the daemon's loop. */
export interface Timer {
  /** Fire `ms` from now instead (default: the delay it was made with). */
  rearm(ms?: number): void;
  cancel(): void;
}

/** Timers of the daemon's loop (`PollLoop`). */
export interface Timers {
  /** The loop's monotonic clock, in milliseconds. */
  now(): number;
  /** Runs `fn` once, `ms` from now, on the JS thread. */
  timer(ms: number, fn: () => void): Timer;
}

interface InodeState {
  cachedReaders: number;
  writers: number;
  waiting: (() => void)[];
  invalidations: number;
  /** The kernel may hold pages of this inode. */
  mayBeCached: boolean;
}

export class PageCachePolicy {
  private readonly inodes = new Map<number, InodeState>();

  constructor(private readonly timers: Timers) {}

  private state(ino: number): InodeState {
    let s = this.inodes.get(ino);
    if (!s) {
      s = { cachedReaders: 0, writers: 0, waiting: [], invalidations: 0, mayBeCached: false };
      this.inodes.set(ino, s);
    }
    return s;
  }

  /** Forgets inodes with nothing going on. */
  private tidy(ino: number, s: InodeState): void {
    if (
      s.cachedReaders === 0 && s.writers === 0 && s.waiting.length === 0 &&
      s.invalidations === 0 && !s.mayBeCached
    ) this.inodes.delete(ino);
  }

  /** True when a reader opening `ino` now may use the page cache. */
  readerMayCache(ino: number): boolean {
    const s = this.inodes.get(ino);
    return !s || (s.writers === 0 && s.waiting.length === 0 && s.invalidations === 0);
  }

  openCachedReader(ino: number): void {
    const s = this.state(ino);
    s.cachedReaders++;
    s.mayBeCached = true;
  }

  closeCachedReader(ino: number): void {
    const s = this.state(ino);
    s.cachedReaders = Math.max(0, s.cachedReaders - 1);
    if (s.cachedReaders === 0) this.admitWriters(s);
    this.tidy(ino, s);
  }

  /** True while a writer is open on `ino` (its attributes must not be cached). */
  hasWriters(ino: number): boolean {
    const s = this.inodes.get(ino);
    return s !== undefined && (s.writers > 0 || s.waiting.length > 0);
  }

  /** Runs `go` when a writer may open `ino`: now, or when cached readers are gone. */
  openWriter(ino: number, go: () => void): void {
    const s = this.state(ino);
    if (s.cachedReaders === 0) {
      s.writers++;
      return go();
    }
    let done = false;
    const admit = () => {
      if (done) return;
      done = true;
      timer.cancel();
      const i = s.waiting.indexOf(admit);
      if (i >= 0) s.waiting.splice(i, 1);
      s.writers++;
      go();
    };
    // A reader that keeps the file open must not block writers for ever.
    const timer = this.timers.timer(WRITER_WAIT_MS, admit);
    s.waiting.push(admit);
  }

  closeWriter(ino: number): void {
    const s = this.state(ino);
    s.writers = Math.max(0, s.writers - 1);
    this.tidy(ino, s);
  }

  private admitWriters(s: InodeState): void {
    for (const admit of [...s.waiting]) admit();
  }

  /** True when the kernel may hold pages of `ino`. */
  mayBeCached(ino: number): boolean {
    return this.inodes.get(ino)?.mayBeCached ?? false;
  }

  /** Tracks an invalidation of `ino` until `done` settles. */
  invalidating(ino: number, done: Promise<unknown>): void {
    const s = this.state(ino);
    s.invalidations++;
    const end = () => {
      s.invalidations--;
      // Pages can come back only through a cached reader opened since.
      if (s.invalidations === 0 && s.cachedReaders === 0) s.mayBeCached = false;
      this.tidy(ino, s);
    };
    done.then(end, end);
  }
}

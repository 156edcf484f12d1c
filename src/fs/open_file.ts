/**
 * A memdb file opened for writing. It holds the inode number, never a tree
 * object, so a rename above it or a resync that replaces the tree cannot send
 * its data elsewhere. Writes collect in a `PendingWrite` and reach the tree
 * when the file is flushed (close), synced or released, or after a quiet
 * second: all of one commit is one update that no reader sees half of.
 *
 * A failed write (EFBIG, EACCES without quorum) or a failed commit (ENOSPC,
 * EIO...) drops the whole pending change, so the file keeps its previous
 * content, and the error is kept: the next flush, fsync or close returns it.
 */
import { Limits } from "../memdb/entry.ts";
import { Errno } from "../util/errno.ts";
import { PendingWrite } from "./pending_write.ts";
import type { PveFs } from "./pve_fs.ts";

export class OpenFile {
  /** The uncommitted change, or null when there is none. */
  private pending: PendingWrite | null;
  /** An error not reported yet: the next flush, fsync or close returns it. */
  error = 0;
  /** Set when the file vanished in a resync: the next commit reports EIO. */
  lost = false;
  /** Commits under way (cluster mode) and the calls waiting for them. */
  private busy = false;
  private queue: (() => void)[] = [];

  constructor(
    private readonly fs: PveFs,
    readonly inode: number,
    readonly append: boolean,
    truncate: boolean,
  ) {
    this.pending = truncate ? PendingWrite.truncatedAtOpen() : null;
  }

  /** True when there is something to commit. */
  get dirty(): boolean {
    return this.pending !== null;
  }

  /** True while the only change is the truncation of `open(O_TRUNC)`. */
  get onlyOpenTruncation(): boolean {
    return this.pending?.onlyOpenTruncation ?? false;
  }

  /** The content as this handle sees it: the committed file plus its own change. */
  view(): Uint8Array {
    const base = this.fs.contentOf(this.inode);
    return this.pending ? this.pending.view(base) : base;
  }

  /** Size as this handle sees it. */
  get size(): number {
    const baseSize = this.fs.contentOf(this.inode).length;
    return this.pending ? this.pending.size(baseSize) : baseSize;
  }

  read(offset: number, size: number): Uint8Array {
    const data = this.view();
    return offset >= data.length ? new Uint8Array(0) : data.subarray(offset, offset + size);
  }

  /** Drops the pending change and keeps `errno` for the next flush/close. */
  private failWith(errno: number): number {
    this.pending = null;
    this.error = errno;
    return errno;
  }

  /** Checks what can be checked now (quorum, size limit); 0 or the errno. */
  private check(newEnd: number): number {
    if (!this.fs.opts.quorate()) return this.failWith(Errno.EACCES);
    if (newEnd > Limits.maxFileSize) return this.failWith(Errno.EFBIG);
    return 0;
  }

  /** Takes a write; an O_APPEND handle appends whatever the offset. 0 or an errno. */
  write(data: Uint8Array, offset: number): number {
    const newEnd = this.append ? this.size + data.length : offset + data.length;
    const e = this.check(newEnd);
    if (e) return e;
    this.pending ??= new PendingWrite();
    if (this.append) this.pending.append(data);
    else this.pending.write(offset, data);
    return 0;
  }

  /** ftruncate through this handle. 0 or an errno. */
  truncate(length: number): number {
    const e = this.check(length);
    if (e) return e;
    this.pending ??= new PendingWrite();
    this.pending.truncate(length, this.fs.contentOf(this.inode));
    return 0;
  }

  /**
   * Commits the pending change and calls `done` with 0 or the error (a kept
   * one first). A file removed while open takes its data with it, as on any
   * POSIX filesystem; one that vanished in a resync reports EIO.
   */
  commit(done: (errno: number) => void, origin?: unknown): void {
    if (this.busy) {
      this.queue.push(() => this.commit(done, origin));
      return;
    }
    if (this.error) {
      const e = this.error;
      this.error = 0;
      return done(e);
    }
    const pending = this.pending;
    if (!pending) return done(0);
    this.pending = null;
    const path = this.fs.pathOf(this.inode);
    if (path === undefined) return done(this.lost ? Errno.EIO : 0);
    this.busy = true;
    this.fs.commitOps(pending.ops(path, this.fs.contentOf(this.inode).length), (errno) => {
      this.busy = false;
      done(errno);
      const waiting = this.queue;
      this.queue = [];
      for (const f of waiting) f();
    }, origin);
  }
}

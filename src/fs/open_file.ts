/**
 * An open memdb file. Writes collect in a private working copy and reach the
 * tree as ONE whole-file update when the file is flushed (close), synced or
 * released: one version bump and one SQLite transaction per open/write/close
 * sequence, and no reader ever sees half a file. Reads serve the committed
 * content of the moment (memdb content arrays are never changed in place, so
 * one read request always sees one whole version); the writer sees its own
 * uncommitted copy.
 */
import type { Entry } from "../memdb/entry.ts";
import { Limits } from "../memdb/entry.ts";
import { Errno } from "../util/errno.ts";
import type { FsResult, PveFs } from "./pve_fs.ts";

export class OpenFile {
  /** Uncommitted content (capacity may exceed `size`), or null when clean. */
  private working: Uint8Array | null = null;
  private size = 0;

  constructor(private readonly fs: PveFs, readonly entry: Entry, truncate: boolean) {
    if (truncate) {
      this.working = new Uint8Array(0);
      this.size = 0;
    }
  }

  get dirty(): boolean {
    return this.working !== null;
  }

  read(offset: number, size: number): Uint8Array {
    const data = this.working
      ? this.working.subarray(0, this.size)
      : (this.entry.data ?? new Uint8Array(0));
    if (offset >= data.length) return new Uint8Array(0);
    return data.subarray(offset, Math.min(data.length, offset + size));
  }

  private ensure(end: number): Uint8Array {
    if (!this.working) {
      const cur = this.entry.data ?? new Uint8Array(0);
      this.working = new Uint8Array(Math.max(end, cur.length, 4096));
      this.working.set(cur);
      this.size = cur.length;
    }
    if (end > this.working.length) {
      const grown = new Uint8Array(
        Math.min(Limits.maxFileSize, Math.max(end, this.working.length * 2)),
      );
      grown.set(this.working.subarray(0, this.size));
      this.working = grown;
    }
    return this.working;
  }

  /** Takes a write into the working copy; the limits are checked now, not at close. */
  write(data: Uint8Array, offset: number): FsResult {
    if (!this.fs.opts.quorate()) return { errno: Errno.EACCES };
    const end = offset + data.length;
    if (end > Limits.maxFileSize) return { errno: Errno.EFBIG };
    const buf = this.ensure(end);
    if (offset > this.size) buf.fill(0, this.size, offset);
    buf.set(data, offset);
    this.size = Math.max(this.size, end);
    return { errno: 0, value: data.length };
  }

  /** ftruncate through this handle. */
  truncate(length: number): FsResult {
    if (!this.fs.opts.quorate()) return { errno: Errno.EACCES };
    if (length > Limits.maxFileSize) return { errno: Errno.EFBIG };
    const buf = this.ensure(length);
    if (length > this.size) buf.fill(0, this.size, length);
    this.size = length;
    return { errno: 0, value: 0 };
  }

  /** Size as this handle sees it. */
  get currentSize(): number {
    return this.working ? this.size : (this.entry.data?.length ?? 0);
  }

  /**
   * Commits the working copy as one whole-file update. A file removed while
   * open takes its data with it, as on any POSIX filesystem.
   */
  commit(): FsResult {
    if (!this.working) return { errno: 0, value: 0 };
    const rel = this.fs.pathOf(this.entry);
    const content = this.working.slice(0, this.size);
    this.working = null;
    if (rel === undefined) return { errno: 0, value: 0 };
    return this.fs.writeWhole(rel, content);
  }
}

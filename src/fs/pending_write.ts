/**
 * What one open file handle wrote and did not commit yet, kept as the wire's
 * WRITE messages (cluster spec 5.3): an optional truncation, then the byte
 * ranges the handle wrote, then what an O_APPEND handle appended. Only the
 * ranges a handle wrote are committed, so writers of different ranges of one
 * file never undo each other; `open(O_TRUNC)` + writes from 0 become ONE
 * whole-file write.
 *
 * @example
 * ```ts
 * import { PendingWrite } from "./pending_write.ts";
 * const p = PendingWrite.truncatedAtOpen();
 * p.write(0, new TextEncoder().encode("x\n"));
 * p.ops("f.cfg", 0); // one op: write "x\n" at 0, truncate
 * ```
 */
import type { Op } from "../memdb/op.ts";
import { truncateOp } from "../memdb/op.ts";

/** Bytes written at `offset`: `buf[0, len)` (the rest of `buf` is spare room). */
interface Extent {
  offset: number;
  buf: Uint8Array;
  len: number;
}

const end = (e: Extent) => e.offset + e.len;
const bytes = (e: Extent) => e.buf.subarray(0, e.len);

/** Appends `data` to `e`, doubling its room when needed. */
function grow(e: Extent, data: Uint8Array): void {
  const need = e.len + data.length;
  if (need > e.buf.length) {
    const buf = new Uint8Array(Math.max(need, e.buf.length * 2));
    buf.set(bytes(e));
    e.buf = buf;
  }
  e.buf.set(data, e.len);
  e.len = need;
}

export class PendingWrite {
  /** The size the file is cut (or zero-extended) to before the ranges apply. */
  private trunc: number | null = null;
  /** Written ranges, sorted, neither overlapping nor touching. */
  private extents: Extent[] = [];
  /** What an O_APPEND handle wrote; it goes at the end of the file at commit. */
  private appended: Extent | null = null;
  /** True while the only change is the truncation of `open(O_TRUNC)`. */
  onlyOpenTruncation = false;

  /** The pending change of `open(O_TRUNC)`: the file is empty from now on. */
  static truncatedAtOpen(): PendingWrite {
    const p = new PendingWrite();
    p.trunc = 0;
    p.onlyOpenTruncation = true;
    return p;
  }

  get empty(): boolean {
    return this.trunc === null && this.extents.length === 0 && this.appended === null;
  }

  /**
   * Takes `data` written at `offset`; a later write wins where ranges overlap.
   * `data` is kept, not copied: the caller must not change it afterwards.
   */
  write(offset: number, data: Uint8Array): void {
    this.onlyOpenTruncation = false;
    if (data.length === 0) return;
    const last = this.extents[this.extents.length - 1];
    if (last && offset === end(last)) return grow(last, data); // sequential writes
    const stop = offset + data.length;
    // Ranges that overlap or touch [offset, stop) merge into one.
    const first = this.extents.findIndex((e) => end(e) >= offset);
    if (first < 0 || this.extents[first].offset > stop) {
      const at = first < 0 ? this.extents.length : first;
      this.extents.splice(at, 0, { offset, buf: data, len: data.length });
      return;
    }
    let n = first;
    while (n < this.extents.length && this.extents[n].offset <= stop) n++;
    const merged = this.extents.slice(first, n);
    const from = Math.min(merged[0].offset, offset);
    const to = Math.max(end(merged[merged.length - 1]), stop);
    const buf = new Uint8Array(to - from);
    for (const e of merged) buf.set(bytes(e), e.offset - from);
    buf.set(data, offset - from);
    this.extents.splice(first, n - first, { offset: from, buf, len: buf.length });
  }

  /** Takes `data` written through an O_APPEND handle (kept, like `write`'s). */
  append(data: Uint8Array): void {
    this.onlyOpenTruncation = false;
    if (data.length === 0) return;
    if (this.appended) grow(this.appended, data);
    else this.appended = { offset: 0, buf: data, len: data.length };
  }

  /** ftruncate through the handle, against the file's current content `base`. */
  truncate(length: number, base: Uint8Array): void {
    this.onlyOpenTruncation = false;
    if (this.empty) {
      this.trunc = length;
      return;
    }
    // Rare: a truncation after writes. The handle's view becomes a whole-file update.
    const image = new Uint8Array(length);
    const view = this.view(base);
    image.set(view.subarray(0, Math.min(length, view.length)));
    this.trunc = 0;
    this.extents = length > 0 ? [{ offset: 0, buf: image, len: length }] : [];
    this.appended = null;
  }

  /** Where appended bytes go: after the truncation and the written ranges. */
  private appendAt(baseSize: number): number {
    const last = this.extents[this.extents.length - 1];
    return Math.max(this.trunc ?? baseSize, last ? end(last) : 0);
  }

  /** The file as this handle sees it: `base` with the pending change applied. */
  view(base: Uint8Array): Uint8Array {
    if (this.empty) return base;
    const at = this.appendAt(base.length);
    const out = new Uint8Array(at + (this.appended?.len ?? 0));
    out.set(base.subarray(0, Math.min(base.length, this.trunc ?? base.length)));
    for (const e of this.extents) out.set(bytes(e), e.offset);
    if (this.appended) out.set(bytes(this.appended), at);
    return out;
  }

  /** The size this handle sees, for a file whose current size is `baseSize`. */
  size(baseSize: number): number {
    return this.appendAt(baseSize) + (this.appended?.len ?? 0);
  }

  /**
   * The operations that commit this change to `path`, whose current size is
   * `baseSize`: one whole-file write when the handle truncated to 0 and wrote
   * from 0 on, else a truncation (if any), one write per range, the appended
   * bytes at the end.
   */
  ops(path: string, baseSize: number): Op[] {
    const whole = this.trunc === 0 &&
      (this.extents.length === 0 ? true : this.extents.length === 1 && !this.appended &&
        this.extents[0].offset === 0);
    if (whole) {
      const data = this.extents[0] ?? this.appended;
      return [{
        type: "write",
        path,
        offset: 0,
        data: data ? bytes(data) : new Uint8Array(0),
        truncate: true,
      }];
    }
    const ops: Op[] = [];
    if (this.trunc !== null) ops.push(truncateOp(path, this.trunc));
    for (const e of this.extents) {
      ops.push({ type: "write", path, offset: e.offset, data: bytes(e), truncate: false });
    }
    if (this.appended) {
      const offset = this.appendAt(baseSize);
      ops.push({ type: "write", path, offset, data: bytes(this.appended), truncate: false });
    }
    return ops;
  }
}

/**
 * One kernel request and its replies: {@linkcode Req} writes the reply structs (`struct stat`,
 * `fuse_entry_param`, `fuse_file_info`, `statvfs`, directory entries) and calls
 * `fuse_reply_*`; {@linkcode Requests} keeps the requests a handler has not answered yet so
 * that a session can answer them with EIO when it ends.
 *
 * @example
 * ```ts
 * import { Requests } from "./request.ts";
 * const requests = new Requests();
 * // in a libfuse callback (p: fuse_req_t):
 * //   const r = requests.create(p);
 * //   requests.dispatch(r, () => handler.getattr!(r, ino, undefined));
 * // at teardown:
 * requests.cancelAll();
 * ```
 * @module
 */
import { ENTRY_PARAM, FILE_INFO, FILE_INFO_BIT, FUSE_CTX, STAT, STATVFS } from "../../ffi/fuse3.ts";
import { latin1Bytes, setI64, setU64 } from "../util/bytes.ts";
import { Errno } from "../util/errno.ts";
import { fuse } from "./libfuse.ts";
import type { Attr, DirEntryOut, EntryOut, OpenOut, Request, StatfsOut } from "./types.ts";

/** Writes `a` as a `struct stat` at `base` of `dv` (other fields zero, st_blksize 4096). */
export function writeStat(dv: DataView, base: number, a: Attr): void {
  for (let i = 0; i < STAT.size; i += 8) dv.setBigUint64(base + i, 0n, true);
  setU64(dv, base + STAT.ino, a.ino);
  setU64(dv, base + STAT.nlink, a.nlink);
  dv.setUint32(base + STAT.mode, a.mode, true);
  dv.setUint32(base + STAT.uid, a.uid, true);
  dv.setUint32(base + STAT.gid, a.gid, true);
  setI64(dv, base + STAT.size_, a.size);
  setI64(dv, base + STAT.blksize, 4096);
  setI64(dv, base + STAT.blocks, a.blocks);
  setI64(dv, base + STAT.atimSec, Math.trunc(a.atime));
  setI64(dv, base + STAT.mtimSec, Math.trunc(a.mtime));
  setI64(dv, base + STAT.ctimSec, Math.trunc(a.ctime));
}

/** Sets the reply bits and `fh` of `o` in a `struct fuse_file_info`, keeping its other bits. */
export function writeFi(fi: Uint8Array, o: OpenOut): void {
  const dv = new DataView(fi.buffer, fi.byteOffset, fi.byteLength);
  let bits = dv.getUint32(FILE_INFO.bits, true) &
    ~(FILE_INFO_BIT.directIo | FILE_INFO_BIT.keepCache | FILE_INFO_BIT.nonseekable |
      FILE_INFO_BIT.cacheReaddir | FILE_INFO_BIT.noflush);
  if (o.directIo) bits |= FILE_INFO_BIT.directIo;
  if (o.keepCache) bits |= FILE_INFO_BIT.keepCache;
  if (o.nonseekable) bits |= FILE_INFO_BIT.nonseekable;
  if (o.cacheReaddir) bits |= FILE_INFO_BIT.cacheReaddir;
  if (o.noflush) bits |= FILE_INFO_BIT.noflush;
  dv.setUint32(FILE_INFO.bits, bits >>> 0, true);
  setU64(dv, FILE_INFO.fh, o.fh ?? 0);
}

// Scratch structs: replies are synchronous FFI calls on the one JS thread, so sharing is safe.
const entryBuf = new Uint8Array(ENTRY_PARAM.size);
const entryDv = new DataView(entryBuf.buffer);
const statBuf = new Uint8Array(STAT.size);
const statDv = new DataView(statBuf.buffer);
const statvfsBuf = new Uint8Array(STATVFS.size);
const statvfsDv = new DataView(statvfsBuf.buffer);

/** `e` as a `struct fuse_entry_param` (in a shared scratch buffer: use it at once). */
export function fillEntry(e: EntryOut): Uint8Array {
  setU64(entryDv, ENTRY_PARAM.ino, e.ino);
  setU64(entryDv, ENTRY_PARAM.generation, e.generation ?? 0);
  writeStat(entryDv, ENTRY_PARAM.attr, e.attr);
  entryDv.setFloat64(ENTRY_PARAM.attrTimeout, e.attrTimeout, true);
  entryDv.setFloat64(ENTRY_PARAM.entryTimeout, e.entryTimeout, true);
  return entryBuf;
}

/** `s` as a `struct statvfs` (in a shared scratch buffer: use it at once). */
function fillStatvfs(s: StatfsOut): Uint8Array {
  statvfsBuf.fill(0);
  const d = statvfsDv;
  setU64(d, STATVFS.bsize, s.bsize);
  setU64(d, STATVFS.frsize, s.frsize);
  setU64(d, STATVFS.blocks, s.blocks);
  setU64(d, STATVFS.bfree, s.bfree);
  setU64(d, STATVFS.bavail, s.bavail);
  setU64(d, STATVFS.files, s.files);
  setU64(d, STATVFS.ffree, s.ffree);
  setU64(d, STATVFS.favail, s.favail);
  setU64(d, STATVFS.namemax, s.namemax);
  return statvfsBuf;
}

/** A kernel request (`fuse_req_t`) as the {@linkcode Request} a handler sees. */
export class Req implements Request {
  #owner: Requests;
  #p: Deno.PointerObject;
  #fi: Uint8Array | undefined;
  #ctx: { uid: number; gid: number; pid: number; umask: number } | undefined;
  /** Set by the first reply. */
  done = false;
  /** Set when the session was torn down with this request pending (it got EIO). */
  cancelled = false;

  constructor(owner: Requests, p: Deno.PointerObject, fi?: Deno.PointerValue) {
    this.#owner = owner;
    this.#p = p;
    if (fi) {
      // Copy: libfuse's fi lives on the C stack of the dispatcher; replies may come later.
      this.#fi = new Uint8Array(FILE_INFO.size);
      Deno.UnsafePointerView.copyInto(fi, this.#fi);
    }
  }

  /** The caller's credentials, read from libfuse only when someone asks. */
  #context() {
    if (!this.#ctx) {
      const ctx = fuse().fuse_req_ctx(this.#p);
      if (ctx === null) {
        this.#ctx = { uid: 0, gid: 0, pid: 0, umask: 0 };
      } else {
        const v = new Deno.UnsafePointerView(ctx);
        this.#ctx = {
          uid: v.getUint32(FUSE_CTX.uid),
          gid: v.getUint32(FUSE_CTX.gid),
          pid: v.getInt32(FUSE_CTX.pid),
          umask: v.getUint32(FUSE_CTX.umask),
        };
      }
    }
    return this.#ctx;
  }

  get uid(): number {
    return this.#context().uid;
  }
  get gid(): number {
    return this.#context().gid;
  }
  get pid(): number {
    return this.#context().pid;
  }
  get umask(): number {
    return this.#context().umask;
  }

  /** The request pointer, or null when the session already answered it at teardown. */
  #take(): Deno.PointerObject | null {
    if (this.cancelled) return null;
    if (this.done) throw new Error("FUSE request already replied");
    this.done = true;
    this.#owner.settled(this);
    return this.#p;
  }

  replyErr(errno: number): void {
    const p = this.#take();
    if (p) fuse().fuse_reply_err(p, errno);
  }
  replyEntry(e: EntryOut): void {
    const p = this.#take();
    if (p) fuse().fuse_reply_entry(p, fillEntry(e));
  }
  replyAttr(a: Attr, timeout: number): void {
    const p = this.#take();
    if (!p) return;
    writeStat(statDv, 0, a);
    fuse().fuse_reply_attr(p, statBuf, timeout);
  }
  replyOpen(o: OpenOut): void {
    const p = this.#take();
    if (!p) return;
    const fi = this.#fi ?? new Uint8Array(FILE_INFO.size);
    writeFi(fi, o);
    fuse().fuse_reply_open(p, fi);
  }
  replyCreate(e: EntryOut, o: OpenOut): void {
    const p = this.#take();
    if (!p) return;
    const fi = this.#fi ?? new Uint8Array(FILE_INFO.size);
    writeFi(fi, o);
    fuse().fuse_reply_create(p, fillEntry(e), fi);
  }
  replyWrite(count: number): void {
    const p = this.#take();
    if (p) fuse().fuse_reply_write(p, BigInt(count));
  }
  replyBuf(data: Uint8Array): void {
    const p = this.#take();
    if (p) fuse().fuse_reply_buf(p, data, BigInt(data.byteLength));
  }
  replyReadlink(target: string): void {
    const b = latin1Bytes(target, true);
    const p = this.#take();
    if (p) fuse().fuse_reply_readlink(p, b);
  }
  replyStatfs(s: StatfsOut): void {
    const p = this.#take();
    if (p) fuse().fuse_reply_statfs(p, fillStatvfs(s));
  }
  replyDir(entries: DirEntryOut[], offset: number, size: number): void {
    if (this.cancelled) return;
    if (this.done) throw new Error("FUSE request already replied");
    const f = fuse();
    const buf = new Uint8Array(size);
    let pos = 0;
    const st = new Uint8Array(STAT.size);
    const sdv = new DataView(st.buffer);
    for (let i = offset; i < entries.length && pos < size; i++) {
      const e = entries[i];
      setU64(sdv, STAT.ino, e.ino);
      sdv.setUint32(STAT.mode, e.mode, true);
      const n = Number(
        f.fuse_add_direntry(
          this.#p,
          buf.subarray(pos),
          BigInt(size - pos),
          latin1Bytes(e.name, true),
          st,
          BigInt(i + 1),
        ),
      );
      if (n > size - pos) break;
      pos += n;
    }
    f.fuse_reply_buf(this.#take()!, buf, BigInt(pos));
  }
}

/**
 * The requests of one session: creates them, runs a handler method for each, and keeps those
 * it has not answered yet (asynchronous replies) until they are answered or cancelled.
 */
export class Requests {
  #pending = new Set<Req>();
  #inCallback: Req | undefined;

  /** Requests handed to a handler and not replied yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /** A request for `fuse_req_t` `p`; `fi` (open/opendir/create) is copied for the reply. */
  create(p: Deno.PointerValue, fi?: Deno.PointerValue): Req {
    return new Req(this, p as Deno.PointerObject, fi);
  }

  /** Runs a handler method for `r`; replies EIO if it throws before replying. */
  dispatch(r: Req, f: () => void): void {
    this.#inCallback = r;
    try {
      f();
    } catch (e) {
      console.error("FUSE handler error:", e);
      if (!r.done) r.replyErr(Errno.EIO);
    } finally {
      this.#inCallback = undefined;
    }
    if (!r.done) this.#pending.add(r);
  }

  /** Called by {@linkcode Req} on its reply. */
  settled(r: Req): void {
    if (r !== this.#inCallback) this.#pending.delete(r);
  }

  /**
   * Answers every pending request with EIO (no process stays blocked, no reply touches freed
   * memory); replies the handler sends later become no-ops.
   */
  cancelAll(): void {
    for (const r of [...this.#pending]) {
      if (!r.done) r.replyErr(Errno.EIO);
      r.cancelled = true;
    }
    this.#pending.clear();
  }
}

/**
 * A typed wrapper over the libfuse3 low-level API: mount a filesystem described by a
 * {@linkcode Handler}, run its request loop on the JS thread, reply now or later.
 *
 * Loop: a `nonblocking` libc `poll` waits (off the JS thread, 200 ms timeout) for the
 * `/dev/fuse` descriptor or a wake pipe; then requests are received and processed
 * synchronously on the JS thread, so every handler method runs there. The descriptor is
 * `O_NONBLOCK`, and after a request the loop drains: it keeps receiving until `EAGAIN`
 * (spinning up to `drainWaitUs` on the JS thread for the next request, since a client usually
 * sends it within microseconds)
 * before going back to the off-thread poll, which saves the thread hop per request.
 *
 * @example
 * ```ts
 * import { FuseSession } from "./session.ts";
 * const s = FuseSession.mount({
 *   getattr(req, ino) {
 *     if (ino !== 1) return req.replyErr(2);
 *     req.replyAttr({ ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0,
 *       atime: 0, mtime: 0, ctime: 0 }, 1);
 *   },
 * }, { mountpoint: "/mnt/x", fsname: "demo" });
 * Deno.addSignalListener("SIGTERM", () => s.stop());
 * await s.run();
 * ```
 * @module
 */

import {
  CONN_INFO,
  ENTRY_PARAM,
  FILE_INFO,
  FILE_INFO_BIT,
  FORGET_DATA,
  FUSE3_LIBRARY,
  FUSE3_SYMBOLS,
  FUSE_ARGS,
  FUSE_BUF,
  FUSE_CAP,
  FUSE_CTX,
  FUSE_LOWLEVEL_OPS_SIZE,
  FUSE_SET_ATTR,
  LIBC,
  LIBC_LIBRARY,
  LIBC_SYMBOLS,
  OP,
  OP_CALLBACKS,
  POLLFD,
  STAT,
  STATVFS,
} from "../../ffi/fuse3.ts";

/** File attributes. Times are whole seconds; `blocks` is the `st_blocks` value as given. */
export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
}

/** Reply to lookup/mknod/mkdir/symlink/link/create. `ino: 0` with `entryTimeout` = negative entry. */
export interface EntryOut {
  ino: number;
  generation?: number;
  attr: Attr;
  attrTimeout: number;
  entryTimeout: number;
}

/** Reply to open/opendir/create. */
export interface OpenOut {
  fh?: number;
  directIo?: boolean;
  keepCache?: boolean;
  /** Do not send FLUSH on close (for handles that have nothing to flush). */
  noflush?: boolean;
  nonseekable?: boolean;
  /** opendir only: let the kernel cache readdir results. */
  cacheReaddir?: boolean;
}

/** Reply to statfs. */
export interface StatfsOut {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/** One readdir entry. `name` is a byte string (one char per byte, latin1). */
export interface DirEntryOut {
  name: string;
  ino: number;
  mode: number;
}

/** Fields the kernel asked setattr to change (absent = leave alone). Times in whole seconds. */
export interface SetAttrIn {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: number;
  mtime?: number;
  atimeNs?: number;
  mtimeNs?: number;
  atimeNow?: boolean;
  mtimeNow?: boolean;
  ctime?: number;
}

/**
 * One kernel request. Valid until exactly one `reply*` call, which may come later
 * (asynchronously). A second reply throws; a reply after the session ended (the session
 * answered EIO at teardown) is ignored.
 */
export interface Request {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly umask: number;
  /** errno positive; 0 = success with no data. */
  replyErr(errno: number): void;
  replyEntry(e: EntryOut): void;
  replyAttr(a: Attr, timeout: number): void;
  replyOpen(o: OpenOut): void;
  replyCreate(e: EntryOut, o: OpenOut): void;
  replyWrite(count: number): void;
  replyBuf(data: Uint8Array): void;
  /** `target` is a byte string. */
  replyReadlink(target: string): void;
  replyStatfs(s: StatfsOut): void;
  /** Fills a buffer of at most `size` bytes with `entries[offset..]` (entry i gets next-offset i+1). */
  replyDir(entries: DirEntryOut[], offset: number, size: number): void;
}

/** Filesystem operations. Every method is optional; a missing one is left NULL (libfuse default). */
export interface Handler {
  lookup?(req: Request, parent: number, name: string): void;
  /** Also fed from forget_multi; the session sends the no-reply itself. */
  forget?(ino: number, nlookup: number): void;
  getattr?(req: Request, ino: number, fh: number | undefined): void;
  setattr?(req: Request, ino: number, set: SetAttrIn, fh: number | undefined): void;
  readlink?(req: Request, ino: number): void;
  mknod?(req: Request, parent: number, name: string, mode: number, rdev: number): void;
  mkdir?(req: Request, parent: number, name: string, mode: number): void;
  unlink?(req: Request, parent: number, name: string): void;
  rmdir?(req: Request, parent: number, name: string): void;
  symlink?(req: Request, link: string, parent: number, name: string): void;
  rename?(
    req: Request,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): void;
  link?(req: Request, ino: number, newParent: number, newName: string): void;
  open?(req: Request, ino: number, flags: number): void;
  read?(req: Request, ino: number, size: number, offset: number, fh: number): void;
  /** `data` is a copy (safe to keep). */
  write?(req: Request, ino: number, data: Uint8Array, offset: number, fh: number): void;
  flush?(req: Request, ino: number, fh: number): void;
  release?(req: Request, ino: number, fh: number, flags: number): void;
  fsync?(req: Request, ino: number, datasync: boolean, fh: number): void;
  opendir?(req: Request, ino: number, flags: number): void;
  readdir?(req: Request, ino: number, size: number, offset: number, fh: number): void;
  releasedir?(req: Request, ino: number, fh: number): void;
  statfs?(req: Request, ino: number): void;
  create?(req: Request, parent: number, name: string, mode: number, flags: number): void;
}

/** Mount options. */
export interface MountOptions {
  mountpoint: string;
  /** Shown as the source in /proc/mounts (`-o fsname=...`). */
  fsname?: string;
  /** Passed as one `-o a,b,c`, e.g. `["default_permissions", "allow_other"]`. */
  options?: string[];
  /** libfuse debug output on stderr (`-d`). */
  debug?: boolean;
  /** Drain the device after a request instead of going back to the off-thread poll (default true). */
  drain?: boolean;
  /**
   * While draining, spin up to this many microseconds on the JS thread (non-blocking receives)
   * for the next request before falling back to the off-thread poll. Default 200: a client
   * issuing requests back to back is then served without any thread hop (measured 1.1-4x
   * requests/s on 2 cores); 0 = return to the off-thread poll at the first EAGAIN.
   */
  drainWaitUs?: number;
  /** Max requests handled per wake-up before yielding to the JS event loop (default 256). */
  maxBatch?: number;
  /** conn->max_write (default 131072). */
  maxWrite?: number;
}

type Fuse = Deno.DynamicLibrary<typeof FUSE3_SYMBOLS>["symbols"];
type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let libs: { fuse: Fuse; libc: Libc } | undefined;
function lib(): { fuse: Fuse; libc: Libc } {
  if (!libs) {
    let fuse: Fuse;
    try {
      fuse = Deno.dlopen(FUSE3_LIBRARY, FUSE3_SYMBOLS).symbols;
    } catch (e) {
      throw new Error(
        `cannot load ${FUSE3_LIBRARY} (apt-get install libfuse3-3): ${(e as Error).message}`,
      );
    }
    libs = { fuse, libc: Deno.dlopen(LIBC_LIBRARY, LIBC_SYMBOLS).symbols };
  }
  return libs;
}

/** Bytes of a latin1 byte string, optionally NUL-terminated. Throws on chars above 0xff. */
export function latin1Bytes(s: string, nul = false): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length + (nul ? 1 : 0));
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`not a byte string (char ${c} at ${i})`);
    out[i] = c;
  }
  return out;
}

/** Byte string (one char per byte) of `bytes`. */
export function latin1String(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return s;
}

function cString(libc: Libc, p: Deno.PointerValue): string {
  if (p === null) return "";
  const n = Number(libc.strlen(p));
  if (n === 0) return "";
  return latin1String(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, n)));
}

function fiView(p: Deno.PointerValue): DataView | undefined {
  return p === null
    ? undefined
    : new DataView(Deno.UnsafePointerView.getArrayBuffer(p, FILE_INFO.size));
}

function fhOf(p: Deno.PointerValue): number {
  const v = fiView(p);
  return v ? Number(v.getBigUint64(FILE_INFO.fh, true)) : 0;
}

function writeStat(dv: DataView, base: number, a: Attr): void {
  for (let i = 0; i < STAT.size; i += 8) dv.setBigUint64(base + i, 0n, true);
  dv.setBigUint64(base + STAT.ino, BigInt(a.ino), true);
  dv.setBigUint64(base + STAT.nlink, BigInt(a.nlink), true);
  dv.setUint32(base + STAT.mode, a.mode, true);
  dv.setUint32(base + STAT.uid, a.uid, true);
  dv.setUint32(base + STAT.gid, a.gid, true);
  dv.setBigInt64(base + STAT.size_, BigInt(a.size), true);
  dv.setBigInt64(base + STAT.blksize, 4096n, true);
  dv.setBigInt64(base + STAT.blocks, BigInt(a.blocks), true);
  dv.setBigInt64(base + STAT.atimSec, BigInt(Math.trunc(a.atime)), true);
  dv.setBigInt64(base + STAT.mtimSec, BigInt(Math.trunc(a.mtime)), true);
  dv.setBigInt64(base + STAT.ctimSec, BigInt(Math.trunc(a.ctime)), true);
}

function writeFi(fi: Uint8Array, o: OpenOut): void {
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
  dv.setBigUint64(FILE_INFO.fh, BigInt(o.fh ?? 0), true);
}

// Scratch structs: replies are synchronous FFI calls on the one JS thread, so sharing is safe.
const entryBuf = new Uint8Array(ENTRY_PARAM.size);
const entryDv = new DataView(entryBuf.buffer);
const statBuf = new Uint8Array(STAT.size);
const statDv = new DataView(statBuf.buffer);
const statvfsBuf = new Uint8Array(STATVFS.size);
const statvfsDv = new DataView(statvfsBuf.buffer);

function fillEntry(e: EntryOut): Uint8Array {
  entryDv.setBigUint64(ENTRY_PARAM.ino, BigInt(e.ino), true);
  entryDv.setBigUint64(ENTRY_PARAM.generation, BigInt(e.generation ?? 0), true);
  writeStat(entryDv, ENTRY_PARAM.attr, e.attr);
  entryDv.setFloat64(ENTRY_PARAM.attrTimeout, e.attrTimeout, true);
  entryDv.setFloat64(ENTRY_PARAM.entryTimeout, e.entryTimeout, true);
  return entryBuf;
}

class Req implements Request {
  #s: FuseSession;
  #p: Deno.PointerObject;
  #fi: Uint8Array | undefined;
  #ctx: { uid: number; gid: number; pid: number; umask: number } | undefined;
  done = false;

  constructor(s: FuseSession, p: Deno.PointerObject, fi?: Deno.PointerValue) {
    this.#s = s;
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
      const ctx = lib().fuse.fuse_req_ctx(this.#p);
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

  /** Set when the session was torn down with this request pending (it got EIO). */
  cancelled = false;

  /** The request pointer, or null when the session already answered it at teardown. */
  #take(): Deno.PointerObject | null {
    if (this.cancelled) return null;
    if (this.done) throw new Error("FUSE request already replied");
    this.done = true;
    this.#s._settled(this);
    return this.#p;
  }

  replyErr(errno: number): void {
    const p = this.#take();
    if (p) lib().fuse.fuse_reply_err(p, errno);
  }
  replyEntry(e: EntryOut): void {
    const p = this.#take();
    if (p) lib().fuse.fuse_reply_entry(p, fillEntry(e));
  }
  replyAttr(a: Attr, timeout: number): void {
    const p = this.#take();
    if (!p) return;
    writeStat(statDv, 0, a);
    lib().fuse.fuse_reply_attr(p, statBuf, timeout);
  }
  replyOpen(o: OpenOut): void {
    const p = this.#take();
    if (!p) return;
    const fi = this.#fi ?? new Uint8Array(FILE_INFO.size);
    writeFi(fi, o);
    lib().fuse.fuse_reply_open(p, fi);
  }
  replyCreate(e: EntryOut, o: OpenOut): void {
    const p = this.#take();
    if (!p) return;
    const fi = this.#fi ?? new Uint8Array(FILE_INFO.size);
    writeFi(fi, o);
    lib().fuse.fuse_reply_create(p, fillEntry(e), fi);
  }
  replyWrite(count: number): void {
    const p = this.#take();
    if (p) lib().fuse.fuse_reply_write(p, BigInt(count));
  }
  replyBuf(data: Uint8Array): void {
    const p = this.#take();
    if (p) lib().fuse.fuse_reply_buf(p, data, BigInt(data.byteLength));
  }
  replyReadlink(target: string): void {
    const b = latin1Bytes(target, true);
    const p = this.#take();
    if (p) lib().fuse.fuse_reply_readlink(p, b);
  }
  replyStatfs(s: StatfsOut): void {
    const p = this.#take();
    if (!p) return;
    statvfsBuf.fill(0);
    const d = statvfsDv;
    d.setBigUint64(STATVFS.bsize, BigInt(s.bsize), true);
    d.setBigUint64(STATVFS.frsize, BigInt(s.frsize), true);
    d.setBigUint64(STATVFS.blocks, BigInt(s.blocks), true);
    d.setBigUint64(STATVFS.bfree, BigInt(s.bfree), true);
    d.setBigUint64(STATVFS.bavail, BigInt(s.bavail), true);
    d.setBigUint64(STATVFS.files, BigInt(s.files), true);
    d.setBigUint64(STATVFS.ffree, BigInt(s.ffree), true);
    d.setBigUint64(STATVFS.favail, BigInt(s.favail), true);
    d.setBigUint64(STATVFS.namemax, BigInt(s.namemax), true);
    lib().fuse.fuse_reply_statfs(p, statvfsBuf);
  }
  replyDir(entries: DirEntryOut[], offset: number, size: number): void {
    if (this.cancelled) return;
    if (this.done) throw new Error("FUSE request already replied");
    const fuse = lib().fuse;
    const buf = new Uint8Array(size);
    let pos = 0;
    const st = new Uint8Array(STAT.size);
    const sdv = new DataView(st.buffer);
    for (let i = offset; i < entries.length && pos < size; i++) {
      const e = entries[i];
      sdv.setBigUint64(STAT.ino, BigInt(e.ino), true);
      sdv.setUint32(STAT.mode, e.mode, true);
      const n = Number(
        fuse.fuse_add_direntry(
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
    fuse.fuse_reply_buf(this.#take()!, buf, BigInt(pos));
  }
}

type Cb = Deno.UnsafeCallback<Deno.UnsafeCallbackDefinition>;

/**
 * A mounted FUSE filesystem. Create with {@linkcode FuseSession.mount}, then `await run()`.
 */
export class FuseSession {
  /** Requests processed, wake-ups of the off-thread poll (for benchmarks). */
  readonly stats = { requests: 0, wakeups: 0 };
  /** Resolves when the session is torn down (unmounted and destroyed). */
  readonly closed: Promise<void>;

  #handler: Handler;
  #opts: MountOptions;
  #se: Deno.PointerObject;
  #fd: number;
  #callbacks: Cb[] = [];
  #ops = new Uint8Array(FUSE_LOWLEVEL_OPS_SIZE);
  #fbuf = new Uint8Array(FUSE_BUF.size);
  #pipe = new Int32Array(2);
  #pollBuf = new Uint8Array(POLLFD.size * 2);
  #running = false;
  #stopping = false;
  #torn = false;
  #pending = new Set<Req>();
  #inCallback: Req | undefined;
  #notifies = new Set<Promise<unknown>>();
  #resolveClosed!: () => void;

  private constructor(handler: Handler, opts: MountOptions) {
    this.#handler = handler;
    this.#opts = opts;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    const { fuse, libc } = lib();

    try {
      const st = Deno.statSync(opts.mountpoint);
      if (!st.isDirectory) throw new Error("not a directory");
    } catch (e) {
      throw new Error(`FUSE mountpoint ${opts.mountpoint}: ${(e as Error).message}`);
    }

    this.#installOps();

    // fuse_args built by libfuse itself (allocated = 1), freed after fuse_session_new.
    const args = new Uint8Array(FUSE_ARGS.size);
    const argv = ["pmxcfs-ts"];
    const o = [...(opts.fsname ? [`fsname=${opts.fsname}`] : []), ...(opts.options ?? [])];
    if (o.length) argv.push("-o", o.join(","));
    if (opts.debug) argv.push("-d");
    for (const a of argv) {
      if (fuse.fuse_opt_add_arg(args, latin1Bytes(a, true)) !== 0) {
        fuse.fuse_opt_free_args(args);
        this.#closeCallbacks();
        throw new Error("fuse_opt_add_arg: out of memory");
      }
    }
    const se = fuse.fuse_session_new(args, this.#ops, BigInt(FUSE_LOWLEVEL_OPS_SIZE), null);
    fuse.fuse_opt_free_args(args);
    if (se === null) {
      this.#closeCallbacks();
      throw new Error(
        `fuse_session_new failed: bad mount options ${JSON.stringify(argv.slice(1))} ` +
          `(libfuse printed the reason on stderr)`,
      );
    }
    this.#se = se;
    if (fuse.fuse_session_mount(se, latin1Bytes(opts.mountpoint, true)) !== 0) {
      fuse.fuse_session_destroy(se);
      this.#closeCallbacks();
      throw new Error(
        `fuse_session_mount(${opts.mountpoint}) failed: need root (or fusermount3) and /dev/fuse ` +
          `(libfuse printed the reason on stderr)`,
      );
    }
    this.#fd = fuse.fuse_session_fd(se);
    const fl = libc.fcntl(this.#fd, LIBC.F_GETFL, 0);
    libc.fcntl(this.#fd, LIBC.F_SETFL, fl | LIBC.O_NONBLOCK);
    if (libc.pipe2(this.#pipe, LIBC.O_NONBLOCK | LIBC.O_CLOEXEC) !== 0) {
      this.#pipe[0] = this.#pipe[1] = -1;
    }
    const pdv = new DataView(this.#pollBuf.buffer);
    pdv.setInt32(POLLFD.fd, this.#fd, true);
    pdv.setInt16(POLLFD.events, LIBC.POLLIN, true);
    pdv.setInt32(POLLFD.size + POLLFD.fd, this.#pipe[0], true);
    pdv.setInt16(POLLFD.size + POLLFD.events, LIBC.POLLIN, true);
  }

  /**
   * Create a session and mount it. Throws an Error with a clear message on failure.
   *
   * @example
   * ```ts
   * const s = FuseSession.mount(handler, { mountpoint: "/etc/pve", fsname: "pmxcfs",
   *   options: ["default_permissions", "allow_other"] });
   * ```
   */
  static mount(handler: Handler, opts: MountOptions): FuseSession {
    return new FuseSession(handler, opts);
  }

  /** The mountpoint given to {@linkcode FuseSession.mount}. */
  get mountpoint(): string {
    return this.#opts.mountpoint;
  }

  /** Requests handed to a handler and not replied yet (asynchronous replies). */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /**
   * The request loop. Resolves after the session ended (stop(), unmount, connection abort)
   * and was unmounted and destroyed; rejects on an unexpected device error (still torn down).
   */
  async run(): Promise<void> {
    if (this.#running) throw new Error("FuseSession.run() already running");
    if (this.#torn) return;
    this.#running = true;
    const { fuse, libc } = lib();
    const pdv = new DataView(this.#pollBuf.buffer);
    let error: Error | undefined;
    try {
      while (!this.#stopping) {
        pdv.setInt16(POLLFD.revents, 0, true);
        pdv.setInt16(POLLFD.size + POLLFD.revents, 0, true);
        const r = await libc.poll(this.#pollBuf, 2n, 200);
        if (this.#stopping) break;
        if (r <= 0) continue; // timeout or EINTR
        this.stats.wakeups++;
        if (pdv.getInt16(POLLFD.size + POLLFD.revents, true) !== 0) {
          libc.read(this.#pipe[0], new Uint8Array(64), 64n);
        }
        if (pdv.getInt16(POLLFD.revents, true) === 0) continue;
        const res = this.#drain(fuse);
        if (res < 0) {
          error = new Error(`fuse_session_receive_buf: errno ${-res}`);
          break;
        }
        if (res === 1 || fuse.fuse_session_exited(this.#se)) break;
      }
    } finally {
      this.#running = false;
      await this.#teardown();
    }
    if (error) throw error;
  }

  /** Returns 0 = go on, 1 = session exited, <0 = -errno. */
  #drain(fuse: Fuse): number {
    const drain = this.#opts.drain ?? true;
    const waitUs = this.#opts.drainWaitUs ?? 200;
    const max = this.#opts.maxBatch ?? 256;
    let n = 0;
    let spinUntil = 0;
    for (;;) {
      const res = fuse.fuse_session_receive_buf(this.#se, this.#fbuf);
      if (res === -LIBC.EINTR) continue;
      if (res === -LIBC.EAGAIN) {
        if (waitUs > 0 && n > 0 && n < max) {
          // Spin briefly: a client usually sends its next request within microseconds,
          // and catching it here saves a sleep/wake-up on both sides.
          if (spinUntil === 0) spinUntil = performance.now() + waitUs / 1000;
          if (performance.now() < spinUntil) continue;
        }
        return 0;
      }
      spinUntil = 0;
      if (res === 0) return 1; // exited (ENODEV = unmounted is turned into exit by libfuse)
      if (res < 0) return res;
      fuse.fuse_session_process_buf(this.#se, this.#fbuf);
      this.stats.requests++;
      n++;
      if (this.#stopping) return 1;
      if (!drain || n >= max) return 0;
    }
  }

  /** Ends run() promptly (wakes the poll) and unmounts. Safe to call more than once. */
  stop(): void {
    if (this.#stopping || this.#torn) return;
    this.#stopping = true;
    const { fuse, libc } = lib();
    fuse.fuse_session_exit(this.#se);
    if (this.#running) {
      if (this.#pipe[1] >= 0) libc.write(this.#pipe[1], new Uint8Array([1]), 1n);
    } else {
      void this.#teardown();
    }
  }

  /**
   * fuse_lowlevel_notify_inval_inode, run off the JS thread (the kernel may hold it until a
   * pending request on that inode is answered). Resolves to 0 or -errno; -ENOENT (inode not
   * cached) counts as 0. `off` 0 and `len` 0 invalidate attributes and all cached data;
   * `off` -1 only the attributes.
   */
  notifyInvalInode(ino: number, off: number, len: number): Promise<number> {
    if (this.#torn || this.#stopping) return Promise.resolve(-LIBC.ENODEV);
    const p = lib().fuse.fuse_lowlevel_notify_inval_inode(
      this.#se,
      BigInt(ino),
      BigInt(off),
      BigInt(len),
    ).then((r) => (r === -LIBC.ENOENT ? 0 : r));
    return this.#track(p);
  }

  /** fuse_lowlevel_notify_inval_entry (off the JS thread, see notifyInvalInode). */
  notifyInvalEntry(parent: number, name: string): Promise<number> {
    if (this.#torn || this.#stopping) return Promise.resolve(-LIBC.ENODEV);
    const b = latin1Bytes(name, true);
    const p = lib().fuse.fuse_lowlevel_notify_inval_entry(
      this.#se,
      BigInt(parent),
      b,
      BigInt(b.length - 1),
    ).then((r) => (r === -LIBC.ENOENT ? 0 : r));
    return this.#track(p);
  }

  #track(p: Promise<number>): Promise<number> {
    this.#notifies.add(p);
    p.finally(() => this.#notifies.delete(p));
    return p;
  }

  /** @internal called by Req on reply. */
  _settled(r: Req): void {
    if (r !== this.#inCallback) this.#pending.delete(r);
  }

  async #teardown(): Promise<void> {
    if (this.#torn) return;
    this.#torn = true;
    const { fuse, libc } = lib();
    // Answer what is still pending so no process stays blocked and no reply touches freed memory.
    for (const r of [...this.#pending]) {
      if (!r.done) r.replyErr(LIBC.EIO);
      r.cancelled = true; // later replies from the handler become no-ops
    }
    this.#pending.clear();
    if (this.#notifies.size) await Promise.allSettled([...this.#notifies]);
    fuse.fuse_session_unmount(this.#se);
    fuse.fuse_session_destroy(this.#se);
    const mem = new DataView(this.#fbuf.buffer).getBigUint64(FUSE_BUF.mem, true);
    if (mem !== 0n) libc.free(Deno.UnsafePointer.create(mem));
    this.#fbuf.fill(0);
    for (const fd of this.#pipe) if (fd >= 0) libc.close(fd);
    this.#pipe[0] = this.#pipe[1] = -1;
    this.#closeCallbacks();
    this.#resolveClosed();
  }

  #closeCallbacks(): void {
    for (const cb of this.#callbacks) cb.close();
    this.#callbacks = [];
  }

  /** Run a handler method for request `r`; replies EIO if it throws before replying. */
  #dispatch(r: Req, f: () => void): void {
    this.#inCallback = r;
    try {
      f();
    } catch (e) {
      console.error("FUSE handler error:", e);
      if (!r.done) r.replyErr(LIBC.EIO);
    } finally {
      this.#inCallback = undefined;
    }
    if (!r.done) this.#pending.add(r);
  }

  #installOps(): void {
    const h = this.#handler;
    const { libc } = lib();
    const ops = new DataView(this.#ops.buffer);
    const put = <K extends keyof typeof OP_CALLBACKS>(
      name: K,
      fn: Deno.UnsafeCallbackFunction<typeof OP_CALLBACKS[K]["parameters"], "void">,
    ) => {
      const cb = new Deno.UnsafeCallback(OP_CALLBACKS[name], fn) as unknown as Cb;
      this.#callbacks.push(cb);
      ops.setBigUint64(OP[name] * 8, BigInt(Deno.UnsafePointer.value(cb.pointer)), true);
    };
    const req = (p: Deno.PointerValue, fi?: Deno.PointerValue) =>
      new Req(this, p as Deno.PointerObject, fi);
    const str = (p: Deno.PointerValue) => cString(libc, p);
    const maxWrite = this.#opts.maxWrite ?? 131072;

    put("init", (_ud, conn) => {
      if (conn === null) return;
      const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(conn, CONN_INFO.size));
      const want = dv.getUint32(CONN_INFO.want, true) & ~FUSE_CAP.writebackCache;
      dv.setUint32(CONN_INFO.want, want >>> 0, true);
      if (dv.getUint32(CONN_INFO.maxWrite, true) > maxWrite) {
        dv.setUint32(CONN_INFO.maxWrite, maxWrite, true);
      }
    });
    if (h.lookup) {
      put("lookup", (p, parent, name) => {
        const r = req(p);
        this.#dispatch(r, () => h.lookup!(r, Number(parent), str(name)));
      });
    }
    if (h.forget) {
      const fuse = lib().fuse;
      put("forget", (p, ino, n) => {
        try {
          h.forget!(Number(ino), Number(n));
        } catch (e) {
          console.error("FUSE forget handler error:", e);
        }
        fuse.fuse_reply_none(p);
      });
      put("forget_multi", (p, count, forgets) => {
        const c = Number(count);
        if (c > 0 && forgets !== null) {
          const dv = new DataView(
            Deno.UnsafePointerView.getArrayBuffer(forgets, c * FORGET_DATA.size),
          );
          for (let i = 0; i < c; i++) {
            const o = i * FORGET_DATA.size;
            try {
              h.forget!(
                Number(dv.getBigUint64(o + FORGET_DATA.ino, true)),
                Number(dv.getBigUint64(o + FORGET_DATA.nlookup, true)),
              );
            } catch (e) {
              console.error("FUSE forget handler error:", e);
            }
          }
        }
        fuse.fuse_reply_none(p);
      });
    }
    if (h.getattr) {
      put("getattr", (p, ino, fi) => {
        const r = req(p);
        this.#dispatch(r, () => h.getattr!(r, Number(ino), fi === null ? undefined : fhOf(fi)));
      });
    }
    if (h.setattr) {
      put("setattr", (p, ino, attr, toSet, fi) => {
        const r = req(p);
        this.#dispatch(r, () => {
          const set: SetAttrIn = {};
          if (attr !== null) {
            const v = new DataView(Deno.UnsafePointerView.getArrayBuffer(attr, STAT.size));
            const n = (o: number) => Number(v.getBigInt64(o, true));
            if (toSet & FUSE_SET_ATTR.mode) set.mode = v.getUint32(STAT.mode, true);
            if (toSet & FUSE_SET_ATTR.uid) set.uid = v.getUint32(STAT.uid, true);
            if (toSet & FUSE_SET_ATTR.gid) set.gid = v.getUint32(STAT.gid, true);
            if (toSet & FUSE_SET_ATTR.size) set.size = n(STAT.size_);
            if (toSet & FUSE_SET_ATTR.atimeNow) set.atimeNow = true;
            else if (toSet & FUSE_SET_ATTR.atime) {
              set.atime = n(STAT.atimSec);
              set.atimeNs = n(STAT.atimNsec);
            }
            if (toSet & FUSE_SET_ATTR.mtimeNow) set.mtimeNow = true;
            else if (toSet & FUSE_SET_ATTR.mtime) {
              set.mtime = n(STAT.mtimSec);
              set.mtimeNs = n(STAT.mtimNsec);
            }
            if (toSet & FUSE_SET_ATTR.ctime) set.ctime = n(STAT.ctimSec);
          }
          h.setattr!(r, Number(ino), set, fi === null ? undefined : fhOf(fi));
        });
      });
    }
    if (h.readlink) {
      put("readlink", (p, ino) => {
        const r = req(p);
        this.#dispatch(r, () => h.readlink!(r, Number(ino)));
      });
    }
    if (h.mknod) {
      put("mknod", (p, parent, name, mode, rdev) => {
        const r = req(p);
        this.#dispatch(r, () => h.mknod!(r, Number(parent), str(name), mode, Number(rdev)));
      });
    }
    if (h.mkdir) {
      put("mkdir", (p, parent, name, mode) => {
        const r = req(p);
        this.#dispatch(r, () => h.mkdir!(r, Number(parent), str(name), mode));
      });
    }
    if (h.unlink) {
      put("unlink", (p, parent, name) => {
        const r = req(p);
        this.#dispatch(r, () => h.unlink!(r, Number(parent), str(name)));
      });
    }
    if (h.rmdir) {
      put("rmdir", (p, parent, name) => {
        const r = req(p);
        this.#dispatch(r, () => h.rmdir!(r, Number(parent), str(name)));
      });
    }
    if (h.symlink) {
      put("symlink", (p, link, parent, name) => {
        const r = req(p);
        this.#dispatch(r, () => h.symlink!(r, str(link), Number(parent), str(name)));
      });
    }
    if (h.rename) {
      put("rename", (p, parent, name, np, nn, flags) => {
        const r = req(p);
        this.#dispatch(
          r,
          () => h.rename!(r, Number(parent), str(name), Number(np), str(nn), flags),
        );
      });
    }
    if (h.link) {
      put("link", (p, ino, np, nn) => {
        const r = req(p);
        this.#dispatch(r, () => h.link!(r, Number(ino), Number(np), str(nn)));
      });
    }
    if (h.open) {
      put("open", (p, ino, fi) => {
        const r = req(p, fi);
        this.#dispatch(r, () => h.open!(r, Number(ino), fiView(fi)?.getInt32(0, true) ?? 0));
      });
    }
    if (h.read) {
      put("read", (p, ino, size, off, fi) => {
        const r = req(p);
        this.#dispatch(r, () => h.read!(r, Number(ino), Number(size), Number(off), fhOf(fi)));
      });
    }
    if (h.write) {
      put("write", (p, ino, buf, size, off, fi) => {
        const r = req(p);
        this.#dispatch(r, () => {
          const n = Number(size);
          const data = n === 0 || buf === null
            ? new Uint8Array(0)
            : new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(buf, n)).slice();
          h.write!(r, Number(ino), data, Number(off), fhOf(fi));
        });
      });
    }
    if (h.flush) {
      put("flush", (p, ino, fi) => {
        const r = req(p);
        this.#dispatch(r, () => h.flush!(r, Number(ino), fhOf(fi)));
      });
    }
    if (h.release) {
      put("release", (p, ino, fi) => {
        const r = req(p);
        const flags = fiView(fi)?.getInt32(FILE_INFO.flags, true) ?? 0;
        this.#dispatch(r, () => h.release!(r, Number(ino), fhOf(fi), flags));
      });
    }
    if (h.fsync) {
      put("fsync", (p, ino, datasync, fi) => {
        const r = req(p);
        this.#dispatch(r, () => h.fsync!(r, Number(ino), datasync !== 0, fhOf(fi)));
      });
    }
    if (h.opendir) {
      put("opendir", (p, ino, fi) => {
        const r = req(p, fi);
        this.#dispatch(
          r,
          () => h.opendir!(r, Number(ino), fiView(fi)?.getInt32(FILE_INFO.flags, true) ?? 0),
        );
      });
    }
    if (h.readdir) {
      put("readdir", (p, ino, size, off, fi) => {
        const r = req(p);
        this.#dispatch(
          r,
          () => h.readdir!(r, Number(ino), Number(size), Number(off), fhOf(fi)),
        );
      });
    }
    if (h.releasedir) {
      put("releasedir", (p, ino, fi) => {
        const r = req(p);
        this.#dispatch(r, () => h.releasedir!(r, Number(ino), fhOf(fi)));
      });
    }
    if (h.statfs) {
      put("statfs", (p, ino) => {
        const r = req(p);
        this.#dispatch(r, () => h.statfs!(r, Number(ino)));
      });
    }
    if (h.create) {
      put("create", (p, parent, name, mode, fi) => {
        const r = req(p, fi);
        const flags = fiView(fi)?.getInt32(FILE_INFO.flags, true) ?? 0;
        this.#dispatch(r, () => h.create!(r, Number(parent), str(name), mode, flags));
      });
    }
  }
}

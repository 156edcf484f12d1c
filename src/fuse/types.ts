/**
 * The types between the FUSE session and a filesystem: what a {@linkcode Handler} is asked
 * ({@linkcode SetAttrIn}, {@linkcode Request}) and what it replies ({@linkcode Attr},
 * {@linkcode EntryOut}, {@linkcode OpenOut}, {@linkcode StatfsOut}, {@linkcode DirEntryOut}),
 * and the {@linkcode MountOptions} of a session.
 *
 * @example
 * ```ts
 * import type { Handler } from "./types.ts";
 * const handler: Handler = {
 *   getattr(req, ino) {
 *     if (ino !== 1) return req.replyErr(2);
 *     req.replyAttr({ ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0,
 *       atime: 0, mtime: 0, ctime: 0 }, 1);
 *   },
 * };
 * ```
 * @module
 */

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
  /**
   * Keep receiving after a request until the device has none (`EAGAIN`) instead of going back
   * to the poll loop's off-thread poll after each one (default true).
   */
  drain?: boolean;
  /**
   * While draining, spin up to this many microseconds on the JS thread (non-blocking receives)
   * for the next request before going back to the poll loop. Default 200: a client issuing
   * requests back to back is then served without any thread hop (measured 1.1-4x requests/s
   * on 2 cores); 0 = go back to the poll loop at the first EAGAIN.
   */
  drainWaitUs?: number;
  /** Max requests handled per wake-up before yielding to the poll loop (default 256). */
  maxBatch?: number;
  /** conn->max_write (default 131072). */
  maxWrite?: number;
}

/**
 * Maps kernel requests (node ids, file handles) onto the plugin layer. Node
 * ids are derived, not allocated: 1 is the mount root, 2.. the synthetic
 * names, and memdb inode N is N + 16 (memdb inodes are stable across renames
 * and never reused), so `forget` needs no bookkeeping. Handles hold node ids,
 * never tree objects, so a resync that replaces the tree leaves them valid.
 *
 * Changes go out through the plugin layer's commit port and the reply is sent
 * when the committer answers. Every applied change, whatever applied it,
 * comes back through `applied()`, which invalidates what the kernel may hold.
 */
import type { Attr, DirEntryOut, EntryOut, Handler, Request, SetAttrIn } from "./types.ts";
import { type Attributes, type Node, PveFs, SYNTHETIC } from "../fs/pve_fs.ts";
import { OpenFile } from "../fs/open_file.ts";
import { Errno } from "../util/errno.ts";
import { EntryType } from "../memdb/entry.ts";
import type { Change } from "../memdb/memdb.ts";
import type { Op } from "../memdb/op.ts";
import { truncateOp } from "../memdb/op.ts";
import { PageCachePolicy, type Timer, type Timers } from "./page_cache.ts";

const ROOT = 1;
const MEMDB_BASE = 16;
/** Kernel cache lifetime of memdb attributes and names; changes invalidate them. */
const CACHE_SECONDS = 1;

const O_ACCMODE = 0o3;
const O_APPEND = 0o2000;
const O_TRUNC = 0o1000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** A handle with writes but no close for this long commits them anyway. */
export const IDLE_COMMIT_MS = 1000;

/**
 * The origin of changes whose effect on names and attributes the kernel
 * already knows (it made them through this mount): only cached pages need
 * dropping.
 */
const KERNEL = Symbol("kernel");

/** The file-type bits readdir reports (no need to generate function-file content). */
function typeBits(n: Node): number {
  if (n.kind === "symlink") return 0o120000;
  if (n.kind === "func") return S_IFREG;
  if (n.kind === "root" || n.entry.type === EntryType.Dir) return 0o040000;
  return S_IFREG;
}

type Handle =
  | { kind: "file"; file: OpenFile; ino: number; lastWrite: number; wrote: boolean }
  /** A reader: through the page cache, or direct I/O on a snapshot of one version. */
  | { kind: "read"; ino: number; snapshot?: Uint8Array }
  | { kind: "func"; name: string; content: Uint8Array }
  | { kind: "dir"; entries: DirEntryOut[] };

/** Kernel cache invalidation (run off the JS thread, so it cannot deadlock). */
export interface Invalidator {
  /** Attributes and cached pages of node `ino`. */
  inode(ino: number): Promise<unknown>;
  /** The name `name` in directory node `parent`. */
  entry(parent: number, name: string): Promise<unknown>;
}

/** Where the handler's log lines go. */
export interface HandlerLog {
  /** True when debug lines are wanted (checked before one is built). */
  readonly debugging: boolean;
  debug(msg: string): void;
  warn(msg: string): void;
}

const quiet: HandlerLog = { debugging: false, debug() {}, warn() {} };

export class PveHandler implements Handler {
  private readonly handles = new Map<number, Handle>();
  private readonly cache: PageCachePolicy;
  /** Writer handles with uncommitted writes, for the quiet-second commit. */
  private readonly unsettled = new Set<Handle & { kind: "file" }>();
  /** One timer sweeps them all (a timer per write would wake the loop for nothing). */
  private idleTimer?: Timer;
  private idleArmed = false;
  private nextFh = 1;
  invalidate: Invalidator = { inode: () => Promise.resolve(), entry: () => Promise.resolve() };

  constructor(
    readonly fs: PveFs,
    private readonly timers: Timers,
    private readonly log: HandlerLog = quiet,
  ) {
    this.cache = new PageCachePolicy(timers);
  }

  // ---- node ids -----------------------------------------------------------------

  inoOf(n: Node): number {
    if (n.kind === "root") return ROOT;
    if (n.kind === "memdb") return n.entry.inode + MEMDB_BASE;
    return 2 + SYNTHETIC.indexOf(n.name);
  }

  private node(ino: number): Node | undefined {
    if (ino === ROOT) return { kind: "root" };
    if (ino < MEMDB_BASE) {
      const name = SYNTHETIC[ino - 2];
      return name === undefined ? undefined : this.fs.synthetic(name);
    }
    return this.fs.nodeOf(ino - MEMDB_BASE);
  }

  private relOf(n: Node): string {
    return n.kind === "root" ? "" : n.kind === "memdb" ? n.rel : n.name;
  }

  private child(parent: Node, name: string): Node | Errno {
    if (parent.kind === "root") {
      return this.fs.synthetic(name) ?? this.fs.resolve(name);
    }
    if (parent.kind !== "memdb" || !parent.entry.children) return Errno.ENOTDIR;
    const e = parent.entry.children.get(name);
    return e ? { kind: "memdb", entry: e, rel: `${parent.rel}/${name}` } : Errno.ENOENT;
  }

  private childRel(parentIno: number, name: string): string | Errno {
    const p = this.node(parentIno);
    if (!p) return Errno.ENOENT;
    if (p.kind === "root") return name;
    if (p.kind !== "memdb") return Errno.ENOTDIR;
    return `${p.rel}/${name}`;
  }

  private attr(ino: number, a: Attributes): Attr {
    return { ino, ...a, atime: a.mtime, ctime: a.mtime };
  }

  /**
   * How long the kernel may keep attributes. Never for function files, and
   * never while a writer is open: its uncommitted size must not be served
   * from the cache to others after it committed.
   */
  private timeout(n: Node, ino: number): number {
    return n.kind === "func" || this.cache.hasWriters(ino) ? 0 : CACHE_SECONDS;
  }

  private entryOut(n: Node): EntryOut {
    const ino = this.inoOf(n);
    const entryTimeout = n.kind === "func" ? 0 : CACHE_SECONDS;
    const attr = this.attr(ino, this.fs.attributes(n));
    return { ino, attr, attrTimeout: this.timeout(n, ino), entryTimeout };
  }

  /** Replies with the entry now at `rel` after a successful create/mkdir. */
  private replyNewEntry(req: Request, rel: string): void {
    const n = this.fs.resolve(rel);
    if (typeof n === "number") return req.replyErr(n);
    req.replyEntry(this.entryOut(n));
  }

  // ---- applied changes ------------------------------------------------------------

  /**
   * Called for every change applied to the tree, after it is on disk. The
   * kernel knows what it did itself through this mount (origin KERNEL): then
   * only cached pages are dropped. Anything else (a resync, a peer, an
   * unlock) invalidates attributes, pages and names.
   */
  applied(change: Change, origin?: unknown): void {
    const kernel = origin === KERNEL;
    for (const e of change.upsert) {
      const ino = e.inode + MEMDB_BASE;
      if (!kernel || this.cache.mayBeCached(ino)) this.invalidateInode(ino);
    }
    for (const inode of change.remove) {
      const ino = inode + MEMDB_BASE;
      for (const h of this.handles.values()) {
        if (h.kind === "file" && h.ino === ino && !kernel) h.file.lost = true;
      }
      if (!kernel) this.invalidateInode(ino);
    }
    if (kernel) return;
    for (const { parent, name } of change.names) {
      const p = parent === 0 ? ROOT : parent + MEMDB_BASE;
      if (this.log.debugging) this.log.debug(`invalidate entry ${p}/${name}`);
      void this.invalidate.entry(p, name);
    }
  }

  private invalidateInode(ino: number): void {
    if (this.log.debugging) this.log.debug(`invalidate inode ${ino}`);
    this.cache.invalidating(ino, this.invalidate.inode(ino));
  }

  /** Commits `op`, then calls `then` with 0 or the errno. */
  private commit(op: Op, then: (errno: number) => void, origin: unknown = KERNEL): void {
    this.fs.change(op, then, origin);
  }

  // ---- lookups and attributes --------------------------------------------------------

  lookup(req: Request, parent: number, name: string): void {
    const p = this.node(parent);
    if (!p) return req.replyErr(Errno.ENOENT);
    const n = this.child(p, name);
    if (typeof n === "number") return req.replyErr(n);
    req.replyEntry(this.entryOut(n));
  }

  /** Attributes of `ino`; a writer's handle sees its own size. */
  private attrOf(ino: number, n: Node, fh: number | undefined): Attr {
    const a = this.attr(ino, this.fs.attributes(n));
    const h = fh !== undefined ? this.handles.get(fh) : undefined;
    if (h?.kind === "file" && h.ino === ino) a.size = h.file.size;
    return a;
  }

  getattr(req: Request, ino: number, fh: number | undefined): void {
    const n = this.node(ino);
    if (!n) return req.replyErr(Errno.ENOENT);
    req.replyAttr(this.attrOf(ino, n, fh), this.timeout(n, ino));
  }

  setattr(req: Request, ino: number, set: SetAttrIn, fh: number | undefined): void {
    const n = this.node(ino);
    if (!n) return req.replyErr(Errno.ENOENT);
    const rel = this.relOf(n);
    const before = this.attrOf(ino, n, fh);
    // The order libfuse 2's high-level layer used: chmod, chown, truncate, utimens.
    if (set.mode !== undefined) {
      const r = this.fs.chmod(rel, set.mode);
      if (r.errno) return req.replyErr(r.errno);
    }
    if (set.uid !== undefined || set.gid !== undefined) {
      const r = this.fs.chown(set.uid, set.gid);
      if (r.errno) return req.replyErr(r.errno);
    }
    const finish = () => {
      // An expired lock may have been removed by the unlock request: the call still succeeded.
      const after = this.node(ino);
      if (!after) return req.replyAttr(before, 0);
      req.replyAttr(this.attrOf(ino, after, fh), this.timeout(after, ino));
    };
    const utime = () => {
      const hasA = set.atime !== undefined || set.atimeNow;
      const hasM = set.mtime !== undefined || set.mtimeNow;
      // Like the original, only a change of both times reaches memdb (touch -a/-m are no-ops).
      if (!(hasA && hasM)) return finish();
      const mtime = set.mtimeNow ? this.fs.opts.now() : set.mtime!;
      const op = this.fs.utimeOp(rel, mtime);
      // An unlock request may delete the lock: names must be invalidated.
      const origin = op.type === "unlockRequest" ? undefined : KERNEL;
      this.commit(op, (e) => e ? req.replyErr(e) : finish(), origin);
    };
    if (set.size === undefined) return utime();
    const h = fh !== undefined ? this.handles.get(fh) : undefined;
    if (h?.kind === "file") {
      const e = h.file.truncate(set.size);
      if (e) return req.replyErr(e);
      h.wrote = true;
      return utime();
    }
    if (n.kind === "func") {
      const e = this.fs.functionTruncate(n.name).errno;
      return e ? req.replyErr(e) : utime();
    }
    if (n.kind !== "memdb") return req.replyErr(Errno.EACCES);
    this.commit(truncateOp(rel, set.size), (e) => e ? req.replyErr(e) : utime());
  }

  readlink(req: Request, ino: number): void {
    const n = this.node(ino);
    if (n?.kind !== "symlink") return req.replyErr(Errno.EINVAL);
    req.replyReadlink(n.target);
  }

  statfs(req: Request): void {
    const s = this.fs.statfs();
    req.replyStatfs({
      bsize: s.bsize,
      frsize: 0,
      blocks: s.blocks,
      bfree: s.bfree,
      bavail: s.bfree,
      files: s.files,
      ffree: s.ffree,
      favail: 0,
      namemax: s.namemax,
    });
  }

  // ---- namespace changes ----------------------------------------------------------------

  /** Commits `op` for a name in `parent` and replies with the new entry or the errno. */
  private makeEntry(req: Request, parent: number, name: string, type: "create" | "mkdir"): void {
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    this.commit({ type, path: rel }, (e) => e ? req.replyErr(e) : this.replyNewEntry(req, rel));
  }

  mknod(req: Request, parent: number, name: string, mode: number): void {
    if ((mode & S_IFMT) !== S_IFREG) return req.replyErr(Errno.ENOSYS);
    this.makeEntry(req, parent, name, "create");
  }

  mkdir(req: Request, parent: number, name: string): void {
    this.makeEntry(req, parent, name, "mkdir");
  }

  private remove(req: Request, parent: number, name: string): void {
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    this.commit({ type: "delete", path: rel }, (e) => req.replyErr(e));
  }

  unlink(req: Request, parent: number, name: string): void {
    this.remove(req, parent, name);
  }

  rmdir(req: Request, parent: number, name: string): void {
    this.remove(req, parent, name);
  }

  rename(
    req: Request,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): void {
    if (flags !== 0) return req.replyErr(Errno.EINVAL);
    const from = this.childRel(parent, name);
    const to = this.childRel(newParent, newName);
    if (typeof from === "number") return req.replyErr(from);
    if (typeof to === "number") return req.replyErr(to);
    this.commit({ type: "rename", path: from, to }, (e) => req.replyErr(e));
  }

  // ---- files ----------------------------------------------------------------------

  private addHandle(h: Handle): number {
    const fh = this.nextFh++;
    this.handles.set(fh, h);
    return fh;
  }

  open(req: Request, ino: number, flags: number): void {
    const n = this.node(ino);
    if (!n) return req.replyErr(Errno.ENOENT);
    const trunc = (flags & O_TRUNC) !== 0;
    if (n.kind === "func") {
      if (trunc && this.fs.functionTruncate(n.name).errno) return req.replyErr(Errno.EIO);
      // A snapshot per open handle (sane Quirk Q12).
      const content = this.fs.functionContent(n.name);
      const fh = this.addHandle({ kind: "func", name: n.name, content });
      return req.replyOpen({ fh, directIo: true });
    }
    if (n.kind !== "memdb" || n.entry.type !== EntryType.File) return req.replyErr(Errno.EACCES);
    if ((flags & O_ACCMODE) === 0 && !trunc) return this.openReader(req, ino, n.entry.inode);
    if (trunc && !this.fs.opts.quorate()) return req.replyErr(Errno.EACCES);
    const inode = n.entry.inode;
    this.cache.openWriter(ino, () => {
      const file = new OpenFile(this.fs, inode, (flags & O_APPEND) !== 0, trunc);
      const h: Handle = { kind: "file", file, ino, lastWrite: 0, wrote: trunc };
      const fh = this.addHandle(h);
      if (trunc) this.armIdleCommit(h);
      // Writers bypass the page cache, so nobody sees their uncommitted data.
      req.replyOpen({ fh, directIo: true });
    });
  }

  /**
   * A read-only open: through the page cache when no writer is about (a
   * handle with nothing to flush: no FLUSH round trip on close), else direct
   * I/O on the version committed now.
   */
  private openReader(req: Request, ino: number, inode: number): void {
    if (this.cache.readerMayCache(ino)) {
      this.cache.openCachedReader(ino);
      const fh = this.addHandle({ kind: "read", ino });
      return req.replyOpen({ fh, keepCache: true, noflush: true });
    }
    const fh = this.addHandle({ kind: "read", ino, snapshot: this.fs.contentOf(inode) });
    req.replyOpen({ fh, directIo: true, noflush: true });
  }

  create(req: Request, parent: number, name: string, _mode: number, flags: number): void {
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    this.commit({ type: "create", path: rel }, (e) => {
      if (e) return req.replyErr(e);
      const n = this.fs.resolve(rel);
      if (typeof n === "number" || n.kind !== "memdb") return req.replyErr(Errno.EIO);
      const ino = this.inoOf(n);
      // A new inode has no readers: the writer opens at once.
      this.cache.openWriter(ino, () => {});
      const file = new OpenFile(this.fs, n.entry.inode, (flags & O_APPEND) !== 0, false);
      const fh = this.addHandle({ kind: "file", file, ino, lastWrite: 0, wrote: false });
      req.replyCreate(this.entryOut(n), { fh, directIo: true });
    });
  }

  read(req: Request, _ino: number, size: number, offset: number, fh: number): void {
    const h = this.handles.get(fh);
    if (!h || h.kind === "dir") return req.replyErr(Errno.EBADF);
    if (h.kind === "file") return req.replyBuf(h.file.read(offset, size));
    const data = h.kind === "func"
      ? h.content
      : h.snapshot ?? this.fs.contentOf(h.ino - MEMDB_BASE);
    req.replyBuf(data.subarray(Math.min(offset, data.length), offset + size));
  }

  write(req: Request, _ino: number, data: Uint8Array, offset: number, fh: number): void {
    const h = this.handles.get(fh);
    if (!h || h.kind === "dir" || h.kind === "read") return req.replyErr(Errno.EBADF);
    if (h.kind === "func") {
      const r = this.fs.functionWrite(h.name, data, offset);
      return r.errno ? req.replyErr(r.errno) : req.replyWrite(r.value!);
    }
    h.wrote = true;
    const e = h.file.write(data, offset);
    if (e) return req.replyErr(e);
    req.replyWrite(data.length);
    this.armIdleCommit(h);
  }

  /** Writers that keep a file open still get their data in after a quiet second. */
  private armIdleCommit(h: Handle & { kind: "file" }): void {
    h.lastWrite = this.timers.now();
    this.unsettled.add(h);
    if (this.idleArmed) return;
    this.idleArmed = true;
    if (this.idleTimer) this.idleTimer.rearm(IDLE_COMMIT_MS);
    else this.idleTimer = this.timers.timer(IDLE_COMMIT_MS, () => this.sweepIdle());
  }

  /** Commits the handles quiet for a second; sleeps again until the next one is due. */
  private sweepIdle(): void {
    this.idleArmed = false;
    const now = this.timers.now();
    let next = Infinity;
    for (const h of [...this.unsettled]) {
      const due = h.lastWrite + IDLE_COMMIT_MS;
      if (due > now) {
        next = Math.min(next, due);
        continue;
      }
      // Nobody waits for this commit: its error stays on the handle for the next close.
      this.commitHandle(h, (e) => {
        if (e) h.file.error = e;
      });
    }
    if (next !== Infinity) {
      this.idleArmed = true;
      this.idleTimer!.rearm(next - now);
    }
  }

  private commitHandle(h: Handle & { kind: "file" }, done: (errno: number) => void): void {
    this.unsettled.delete(h);
    if (this.log.debugging && h.file.dirty) this.log.debug(`commit handle of inode ${h.ino}`);
    h.file.commit((e) => {
      // A committed change was invalidated where the kernel may cache it.
      if (e === 0) h.wrote = false;
      done(e);
    }, KERNEL);
  }

  flush(req: Request, _ino: number, fh: number): void {
    const h = this.handles.get(fh);
    if (h?.kind !== "file") return req.replyErr(0);
    // `echo x > f` closes a dup of the descriptor before writing: a flush that
    // would commit only the open's truncation waits for the data (or release).
    if (h.file.onlyOpenTruncation && !h.file.error) return req.replyErr(0);
    this.commitHandle(h, (e) => req.replyErr(e));
  }

  fsync(req: Request, _ino: number, _datasync: boolean, fh: number): void {
    const h = this.handles.get(fh);
    if (h?.kind !== "file") return req.replyErr(0);
    this.commitHandle(h, (e) => req.replyErr(e));
  }

  release(req: Request, _ino: number, fh: number): void {
    const h = this.handles.get(fh);
    this.handles.delete(fh);
    if (h?.kind === "read" && !h.snapshot) this.cache.closeCachedReader(h.ino);
    if (h?.kind === "file") this.releaseWriter(h);
    req.replyErr(0);
  }

  /** Last commit of a writer; an error nobody can be told of any more is logged. */
  private releaseWriter(h: Handle & { kind: "file" }): void {
    this.commitHandle(h, (e) => {
      if (e) {
        const path = this.fs.pathOf(h.ino - MEMDB_BASE) ?? `inode ${h.ino - MEMDB_BASE}`;
        this.log.warn(`changes to ${path} were lost at close: errno ${e}`);
      }
      this.cache.closeWriter(h.ino);
      // The writer moved the kernel's file size; pages cached before must go.
      if (h.wrote && this.cache.mayBeCached(h.ino)) this.invalidateInode(h.ino);
    });
  }

  /** Commits every dirty handle (shutdown). */
  commitAll(): void {
    for (const h of this.handles.values()) {
      if (h.kind === "file") {
        this.commitHandle(h, (e) => {
          if (e) this.log.warn(`changes to inode ${h.ino - MEMDB_BASE} lost at exit: errno ${e}`);
        });
      }
    }
  }

  // ---- directories ------------------------------------------------------------------

  opendir(req: Request, ino: number): void {
    const n = this.node(ino);
    if (!n) return req.replyErr(Errno.ENOENT);
    if (n.kind !== "root" && !(n.kind === "memdb" && n.entry.children)) {
      return req.replyErr(Errno.ENOTDIR);
    }
    // The listing is taken once per open directory, so offsets stay stable.
    const entries: DirEntryOut[] = [
      { name: ".", ino, mode: 0o040000 },
      { name: "..", ino: ROOT, mode: 0o040000 },
    ];
    for (const c of this.fs.readdir(n)) {
      entries.push({ name: c.name, ino: this.inoOf(c.node), mode: typeBits(c.node) });
    }
    req.replyOpen({ fh: this.addHandle({ kind: "dir", entries }) });
  }

  readdir(req: Request, _ino: number, size: number, offset: number, fh: number): void {
    const h = this.handles.get(fh);
    if (h?.kind !== "dir") return req.replyErr(Errno.EBADF);
    req.replyDir(h.entries, offset, size);
  }

  releasedir(req: Request, _ino: number, fh: number): void {
    this.handles.delete(fh);
    req.replyErr(0);
  }
}

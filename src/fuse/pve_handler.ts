/**
 * Maps kernel requests (node ids, file handles) onto the plugin layer. Node
 * ids are derived, not allocated: 1 is the mount root, 2.. the synthetic
 * names, and memdb inode N is N + 16 (memdb inodes are stable across renames
 * and never reused), so `forget` needs no bookkeeping.
 */
import type { Attr, DirEntryOut, EntryOut, Handler, Request, SetAttrIn } from "./session.ts";
import { type Attributes, type Node, PveFs, SYNTHETIC } from "../fs/pve_fs.ts";
import { OpenFile } from "../fs/open_file.ts";
import { Errno } from "../util/errno.ts";
import { EntryType } from "../memdb/entry.ts";

const ROOT = 1;
const MEMDB_BASE = 16;
/** Kernel cache lifetime of memdb attributes and names; changes invalidate them. */
const CACHE_SECONDS = 1;

const O_ACCMODE = 0o3;
const O_TRUNC = 0o1000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** A handle with writes but no close for this long commits them anyway. */
export const IDLE_COMMIT_MS = 1000;

/** The file-type bits readdir reports (no need to generate function-file content). */
function typeBits(n: Node): number {
  if (n.kind === "symlink") return 0o120000;
  if (n.kind === "func") return S_IFREG;
  if (n.kind === "root" || n.entry.type === EntryType.Dir) return 0o040000;
  return S_IFREG;
}

type Handle =
  | {
    kind: "file";
    file: OpenFile;
    ino: number;
    reader?: boolean;
    idle?: ReturnType<typeof setTimeout>;
  }
  | { kind: "func"; name: string; content: Uint8Array }
  | { kind: "dir"; entries: DirEntryOut[] };

/** Kernel cache invalidation (the session sends it off the JS thread, so it cannot deadlock). */
export interface Invalidator {
  inode(ino: number): void;
}

export class PveHandler implements Handler {
  private readonly handles = new Map<number, Handle>();
  /** Files whose pages the kernel may cache (read-only opens since the last invalidation). */
  private readonly mayBeCached = new Set<number>();
  /** Open read-only handles per file: while there are any, pages can come back any time. */
  private readonly readers = new Map<number, number>();
  private nextFh = 1;
  invalidate: Invalidator = { inode: () => {} };

  constructor(readonly fs: PveFs) {}

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
    const entry = this.fs.db.memdb.byInodeNumber(ino - MEMDB_BASE);
    if (!entry) return undefined;
    const rel = this.fs.pathOf(entry);
    return rel === undefined ? undefined : { kind: "memdb", entry, rel };
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

  private timeout(n: Node): number {
    return n.kind === "func" ? 0 : CACHE_SECONDS;
  }

  private entryOut(n: Node): EntryOut {
    const ino = this.inoOf(n);
    const t = this.timeout(n);
    return { ino, attr: this.attr(ino, this.fs.attributes(n)), attrTimeout: t, entryTimeout: t };
  }

  /** Replies with the entry now at `rel` after a successful create/mkdir. */
  private replyNewEntry(req: Request, rel: string): void {
    const n = this.fs.resolve(rel);
    if (typeof n === "number") return req.replyErr(n);
    req.replyEntry(this.entryOut(n));
  }

  /** Drops the kernel's cached pages of `ino` after its content changed, when it has any. */
  private contentChanged(ino: number): void {
    if (!this.mayBeCached.has(ino)) return;
    this.invalidate.inode(ino);
    if (!this.readers.has(ino)) this.mayBeCached.delete(ino);
  }

  // ---- lookups and attributes --------------------------------------------------------

  lookup(req: Request, parent: number, name: string): void {
    const p = this.node(parent);
    if (!p) return req.replyErr(Errno.ENOENT);
    const n = this.child(p, name);
    if (typeof n === "number") return req.replyErr(n);
    req.replyEntry(this.entryOut(n));
  }

  getattr(req: Request, ino: number): void {
    const n = this.node(ino);
    if (!n) return req.replyErr(Errno.ENOENT);
    req.replyAttr(this.attr(ino, this.fs.attributes(n)), this.timeout(n));
  }

  setattr(req: Request, ino: number, set: SetAttrIn, fh: number | undefined): void {
    const n = this.node(ino);
    if (!n) return req.replyErr(Errno.ENOENT);
    const rel = this.relOf(n);
    const before = this.attr(ino, this.fs.attributes(n));
    // The order libfuse 2's high-level layer used: chmod, chown, truncate, utimens.
    if (set.mode !== undefined) {
      const r = this.fs.chmod(rel, set.mode);
      if (r.errno) return req.replyErr(r.errno);
    }
    if (set.uid !== undefined || set.gid !== undefined) {
      const r = this.fs.chown(set.uid, set.gid);
      if (r.errno) return req.replyErr(r.errno);
    }
    if (set.size !== undefined) {
      const h = fh !== undefined ? this.handles.get(fh) : undefined;
      const r = h?.kind === "file"
        ? h.file.truncate(set.size)
        : n.kind === "func"
        ? this.fs.functionTruncate(n.name)
        : n.kind === "memdb"
        ? this.fs.truncate(rel, set.size)
        : { errno: Errno.EACCES };
      if (r.errno) return req.replyErr(r.errno);
      if (n.kind === "memdb" && h?.kind !== "file") this.contentChanged(ino);
    }
    const hasA = set.atime !== undefined || set.atimeNow;
    const hasM = set.mtime !== undefined || set.mtimeNow;
    // Like the original, only a change of both times reaches memdb (touch -a/-m are no-ops).
    if (hasA && hasM) {
      const mtime = set.mtimeNow ? this.fs.opts.now() : set.mtime!;
      const r = this.fs.utime(rel, mtime);
      if (r.errno) return req.replyErr(r.errno);
    }
    // An expired lock may have been removed by the unlock request: the call still succeeded.
    const after = this.node(ino);
    if (!after) return req.replyAttr(before, 0);
    const attr = this.attr(ino, this.fs.attributes(after));
    const h = fh !== undefined ? this.handles.get(fh) : undefined;
    if (h?.kind === "file") attr.size = h.file.currentSize;
    req.replyAttr(attr, this.timeout(after));
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

  mknod(req: Request, parent: number, name: string, mode: number): void {
    if ((mode & S_IFMT) !== S_IFREG) return req.replyErr(Errno.ENOSYS);
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    const r = this.fs.create(rel);
    if (r.errno) return req.replyErr(r.errno);
    this.replyNewEntry(req, rel);
  }

  mkdir(req: Request, parent: number, name: string): void {
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    const r = this.fs.mkdir(rel);
    if (r.errno) return req.replyErr(r.errno);
    this.replyNewEntry(req, rel);
  }

  private remove(req: Request, parent: number, name: string): void {
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    req.replyErr(this.fs.delete(rel).errno);
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
    req.replyErr(this.fs.rename(from, to).errno);
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
      const fh = this.addHandle({
        kind: "func",
        name: n.name,
        content: this.fs.functionContent(n.name),
      });
      return req.replyOpen({ fh, directIo: true });
    }
    if (n.kind !== "memdb" || n.entry.type !== EntryType.File) return req.replyErr(Errno.EACCES);
    if (trunc && !this.fs.opts.quorate()) return req.replyErr(Errno.EACCES);
    const file = new OpenFile(this.fs, n.entry, trunc);
    const writer = (flags & O_ACCMODE) !== 0;
    const fh = this.addHandle({ kind: "file", file, ino, reader: !writer });
    // Writers bypass the page cache so nobody sees their uncommitted data;
    // readers keep it across opens, and a commit invalidates it where it may exist.
    if (writer) return req.replyOpen({ fh, directIo: true });
    // Read-only handles have nothing to flush: no FLUSH round trip on close.
    this.mayBeCached.add(ino);
    this.readers.set(ino, (this.readers.get(ino) ?? 0) + 1);
    req.replyOpen({ fh, keepCache: true, noflush: true });
  }

  create(req: Request, parent: number, name: string): void {
    const rel = this.childRel(parent, name);
    if (typeof rel === "number") return req.replyErr(rel);
    const r = this.fs.create(rel);
    if (r.errno) return req.replyErr(r.errno);
    const n = this.fs.resolve(rel);
    if (typeof n === "number" || n.kind !== "memdb") return req.replyErr(Errno.EIO);
    const ino = this.inoOf(n);
    const fh = this.addHandle({ kind: "file", file: new OpenFile(this.fs, n.entry, false), ino });
    req.replyCreate(this.entryOut(n), { fh, directIo: true });
  }

  read(req: Request, _ino: number, size: number, offset: number, fh: number): void {
    const h = this.handles.get(fh);
    if (!h || h.kind === "dir") return req.replyErr(Errno.EBADF);
    if (h.kind === "func") {
      return req.replyBuf(h.content.subarray(Math.min(offset, h.content.length), offset + size));
    }
    req.replyBuf(h.file.read(offset, size));
  }

  write(req: Request, _ino: number, data: Uint8Array, offset: number, fh: number): void {
    const h = this.handles.get(fh);
    if (!h || h.kind === "dir") return req.replyErr(Errno.EBADF);
    const r = h.kind === "func"
      ? this.fs.functionWrite(h.name, data, offset)
      : h.file.write(data, offset);
    if (r.errno) return req.replyErr(r.errno);
    req.replyWrite(r.value!);
    if (h.kind === "file") this.scheduleIdleCommit(fh, h);
  }

  /** Writers that keep a file open still get their data in after a quiet second. */
  private scheduleIdleCommit(fh: number, h: Handle & { kind: "file" }): void {
    if (h.idle !== undefined) clearTimeout(h.idle);
    h.idle = setTimeout(() => {
      h.idle = undefined;
      this.commit(fh);
    }, IDLE_COMMIT_MS);
  }

  private commit(fh: number): number {
    const h = this.handles.get(fh);
    if (h?.kind !== "file") return 0;
    if (h.idle !== undefined) clearTimeout(h.idle);
    h.idle = undefined;
    if (!h.file.dirty) return 0;
    const r = h.file.commit();
    if (r.errno === 0) this.contentChanged(h.ino);
    return r.errno;
  }

  flush(req: Request, _ino: number, fh: number): void {
    req.replyErr(this.commit(fh));
  }

  fsync(req: Request, _ino: number, _datasync: boolean, fh: number): void {
    req.replyErr(this.commit(fh));
  }

  release(req: Request, _ino: number, fh: number): void {
    this.commit(fh);
    const h = this.handles.get(fh);
    if (h?.kind === "file" && h.reader) {
      const n = (this.readers.get(h.ino) ?? 1) - 1;
      if (n > 0) this.readers.set(h.ino, n);
      else this.readers.delete(h.ino);
    }
    this.handles.delete(fh);
    req.replyErr(0);
  }

  /** Commits every dirty handle (shutdown). */
  commitAll(): void {
    for (const fh of this.handles.keys()) this.commit(fh);
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
      entries.push({
        name: c.name,
        ino: this.inoOf(c.node),
        mode: typeBits(c.node),
      });
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

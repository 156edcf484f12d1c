/**
 * The plugin layer (spec 7-9): routes relative paths to the memdb tree, the
 * four node symlinks and the six function files, and applies the rules the
 * FUSE surface shows: presented modes, quorum, chmod/chown, locks, statfs.
 * No I/O of its own: the clock and quorum are injected, and changes go out
 * as operations through the commit port.
 */
import type { Entry } from "../memdb/entry.ts";
import { EntryType, Limits } from "../memdb/entry.ts";
import { Errno } from "../util/errno.ts";
import type { Memdb, StatFs } from "../memdb/memdb.ts";
import type { Op } from "../memdb/op.ts";
import { components, isUnderLockDir } from "../memdb/path.ts";
import type { Committer } from "./committer.ts";
import { entryMode, isPrivatePath, maskMode, S_IFDIR, S_IFLNK, S_IFREG } from "./modes.ts";
import {
  type ClusterInfo,
  clusterlogText,
  debugText,
  membersText,
  versionText,
  vmlistText,
} from "./function_files.ts";

export const SYMLINKS = ["local", "qemu-server", "openvz", "lxc"] as const;
export const FUNCTION_FILES = [
  ".version",
  ".members",
  ".vmlist",
  ".rrd",
  ".clusterlog",
  ".debug",
] as const;
export const SYNTHETIC: readonly string[] = [...SYMLINKS, ...FUNCTION_FILES];

export type Node =
  | { kind: "root" }
  | { kind: "symlink"; name: string; target: string }
  | { kind: "func"; name: string }
  | { kind: "memdb"; entry: Entry; rel: string };

export interface Attributes {
  mode: number;
  nlink: number;
  size: number;
  uid: number;
  gid: number;
  /** Seconds; atime = mtime = ctime. */
  mtime: number;
  /** st_blocks in 4096-byte units, as the original (Quirk Q11). */
  blocks: number;
}

export interface FsOptions {
  nodename: string;
  wwwGid: number;
  /** Daemon start time for `.version`. */
  starttime: number;
  /** Seconds since the epoch (the local clock). */
  now(): number;
  quorate(): boolean;
  debug: { get(): boolean; set(on: boolean): void };
  /** Cluster membership for `.members`; undefined in local mode. */
  cluster?(): ClusterInfo | undefined;
  clinfoVersion?(): number;
}

/** Result of an operation that answers at once: errno 0 with a value, or an errno. */
export type FsResult = { errno: 0; value: number } | { errno: number; value?: undefined };

const ok = (value = 0): FsResult => ({ errno: 0, value });
const err = (errno: number): FsResult => ({ errno });
const EMPTY = new Uint8Array(0);

export class PveFs {
  constructor(
    readonly memdb: Memdb,
    private readonly committer: Committer,
    readonly opts: FsOptions,
  ) {}

  /** The relative path of memdb inode `inode`, or undefined when it is not in the tree. */
  pathOf(inode: number): string | undefined {
    return this.memdb.pathOf(inode);
  }

  /** The memdb node of `inode`, or undefined when it is not in the tree. */
  nodeOf(inode: number): Node | undefined {
    const entry = this.memdb.byInodeNumber(inode);
    const rel = entry && this.memdb.pathOf(inode);
    return rel === undefined ? undefined : { kind: "memdb", entry: entry!, rel };
  }

  /** The committed content of file `inode` (empty when it is gone or empty). */
  contentOf(inode: number): Uint8Array {
    return this.memdb.byInodeNumber(inode)?.data ?? EMPTY;
  }

  /** Routes a relative path (spec 7.1). */
  resolve(rel: string): Node | Errno {
    const c = components(rel);
    if (c.length === 0) return { kind: "root" };
    if (SYNTHETIC.includes(c[0])) {
      if (c.length > 1) return Errno.EACCES;
      return this.synthetic(c[0])!;
    }
    const e = this.memdb.lookup(rel);
    return e ? { kind: "memdb", entry: e, rel: c.join("/") } : Errno.ENOENT;
  }

  /** The synthetic node of a top-level name, or undefined. */
  synthetic(name: string): Node | undefined {
    if ((SYMLINKS as readonly string[]).includes(name)) {
      const sub = name === "local" ? "" : `/${name}`;
      return { kind: "symlink", name, target: `nodes/${this.opts.nodename}${sub}` };
    }
    if ((FUNCTION_FILES as readonly string[]).includes(name)) return { kind: "func", name };
    return undefined;
  }

  attributes(n: Node): Attributes {
    const base = { uid: 0, gid: this.opts.wwwGid, mtime: 0, blocks: 0 };
    switch (n.kind) {
      case "root":
        return { ...base, mode: S_IFDIR | maskMode("dir", "", 0o777), nlink: 2, size: 0 };
      case "symlink": {
        const perm = maskMode("symlink", n.name, this.opts.quorate() ? 0o777 : 0o555);
        return { ...base, mode: S_IFLNK | perm, nlink: 1, size: n.target.length };
      }
      case "func": {
        const size = this.functionContent(n.name).length;
        const perm = n.name === ".debug" ? 0o640 : 0o440;
        return { ...base, mode: S_IFREG | perm, nlink: 1, size, blocks: Math.ceil(size / 4096) };
      }
      case "memdb": {
        const e = n.entry;
        const dir = e.type === EntryType.Dir;
        const size = e.data ? e.data.length : 0;
        return {
          ...base,
          mode: entryMode(dir ? "dir" : "file", n.rel, this.opts.quorate()),
          nlink: dir ? 2 : 1,
          size,
          mtime: e.mtime,
          blocks: Math.ceil(size / 4096),
        };
      }
    }
  }

  /** Listing of a directory: synthetic names at the root hide memdb names. */
  readdir(n: Node): { name: string; node: Node }[] {
    if (n.kind === "root") {
      const out = SYNTHETIC.map((name) => ({ name, node: this.synthetic(name)! }));
      for (const e of this.memdb.root.children!.values()) {
        if (SYNTHETIC.includes(e.name)) continue;
        out.push({ name: e.name, node: { kind: "memdb", entry: e, rel: e.name } });
      }
      return out;
    }
    if (n.kind !== "memdb" || !n.entry.children) return [];
    return [...n.entry.children.values()].map((e) => ({
      name: e.name,
      node: { kind: "memdb", entry: e, rel: `${n.rel}/${e.name}` },
    }));
  }

  // ---- function files -------------------------------------------------------

  functionContent(name: string): Uint8Array {
    return new TextEncoder().encode(this.functionText(name));
  }

  private functionText(name: string): string {
    const m = this.memdb;
    switch (name) {
      case ".version":
        return versionText(
          this.opts.starttime,
          this.opts.clinfoVersion?.() ?? 0,
          m.vmlist.version,
          m.counters,
          [{ node: this.opts.nodename, keys: [] }],
        );
      case ".members":
        return membersText(
          this.opts.nodename,
          this.opts.clinfoVersion?.() ?? 0,
          this.opts.cluster?.(),
        );
      case ".vmlist":
        return vmlistText(m.vmlist);
      case ".clusterlog":
        return clusterlogText([]);
      case ".rrd":
        return "";
      case ".debug":
        return debugText(this.opts.debug.get());
    }
    return "";
  }

  /** A write to a function file (spec 7.4): only `.debug`, only at offset 0. */
  functionWrite(name: string, data: Uint8Array, offset: number): FsResult {
    if (name !== ".debug" || offset !== 0) return err(Errno.EIO);
    if (data.length >= 2 && (data[0] === 0x30 || data[0] === 0x31) && data[1] === 0x0a) {
      this.opts.debug.set(data[0] === 0x31);
      return ok(2);
    }
    return err(Errno.EIO);
  }

  functionTruncate(name: string): FsResult {
    return name === ".debug" ? ok() : err(Errno.EIO);
  }

  // ---- mutations --------------------------------------------------------------

  /** EACCES unless quorate (spec 9), and EACCES for synthetic names (spec 7.1). */
  private writable(rel: string): number {
    const c = components(rel);
    if (c.length === 0 || SYNTHETIC.includes(c[0])) return Errno.EACCES;
    return this.opts.quorate() ? 0 : Errno.EACCES;
  }

  /** The first errno the rules in front of the committer give for `op`, or 0. */
  private refuse(op: Op): number {
    const e = this.writable(op.path) || (op.type === "rename" ? this.writable(op.to) : 0);
    if (e) return e;
    if (op.type === "write" && op.offset + op.data.length > Limits.maxFileSize) {
      return Errno.EFBIG;
    }
    return 0;
  }

  /**
   * Commits `ops` (one op, or the writes of one file handle) after the
   * plugin-layer checks; `done` gets 0 or an errno, now or later.
   */
  commitOps(ops: readonly Op[], done: (errno: number) => void, origin?: unknown): void {
    for (const op of ops) {
      const e = this.refuse(op);
      if (e) return done(e);
    }
    this.committer.commit(ops, done, origin);
  }

  /** Commits one operation (see `commitOps`). */
  change(op: Op, done: (errno: number) => void, origin?: unknown): void {
    this.commitOps([op], done, origin);
  }

  /**
   * The operation of utimens with both times set: MTIME, or an unlock
   * request for mtime 0 on an existing lock directory (spec 6.3).
   */
  utimeOp(rel: string, mtime: number): Op {
    const canon = components(rel).join("/");
    const e = this.memdb.lookup(rel);
    if (mtime === 0 && e && e.type === EntryType.Dir && isUnderLockDir(canon)) {
      return { type: "unlockRequest", path: canon };
    }
    return { type: "mtime", path: rel, mtime };
  }

  /** chmod is accepted, as a no-op, only for the mode shown to writers (spec 8.5). */
  chmod(rel: string, mode: number): FsResult {
    const want = isPrivatePath(components(rel).join("/")) ? 0o600 : 0o640;
    return (mode & 0o7777) === want ? ok() : err(Errno.EPERM);
  }

  /** chown is accepted, as a no-op, only towards root:www-data (spec 8.5). */
  chown(uid: number | undefined, gid: number | undefined): FsResult {
    const uidOk = uid === undefined || uid === 0 || uid === 0xffffffff;
    const gidOk = gid === undefined || gid === this.opts.wwwGid || gid === 0xffffffff;
    return uidOk && gidOk ? ok() : err(Errno.EPERM);
  }

  statfs(): StatFs {
    return this.memdb.statfs();
  }
}

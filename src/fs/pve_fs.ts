/**
 * The plugin layer (spec 7-9): routes relative paths to the memdb tree, the
 * four node symlinks and the six function files, and applies the rules the
 * FUSE surface shows: presented modes, quorum, chmod/chown, locks, statfs.
 * No I/O of its own: the clock, quorum and the database are injected.
 */
import type { Database } from "../store/database.ts";
import type { Entry } from "../memdb/entry.ts";
import { EntryType, Limits } from "../memdb/entry.ts";
import { Errno } from "../util/errno.ts";
import type { Stamp, StatFs } from "../memdb/memdb.ts";
import { components, isUnderLockDir } from "../memdb/path.ts";
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
  /** Writer id of local changes: 0 in local mode. */
  writer: number;
  debug: { get(): boolean; set(on: boolean): void };
  /** Cluster membership for `.members`; undefined in local mode. */
  cluster?(): ClusterInfo | undefined;
  clinfoVersion?(): number;
}

/** Result of an operation: errno 0 with a value, or an errno. */
export type FsResult = { errno: 0; value: number } | { errno: number; value?: undefined };

const ok = (value = 0): FsResult => ({ errno: 0, value });
const err = (errno: number): FsResult => ({ errno });

export class PveFs {
  constructor(readonly db: Database, readonly opts: FsOptions) {}

  private stamp(): Stamp {
    const now = this.opts.now();
    return { writer: this.opts.writer, mtime: now, now };
  }

  /**
   * Path cache. A directory with children can never be renamed or removed, so an
   * entry's path stays valid as long as its own parent and name are unchanged.
   */
  private readonly paths = new WeakMap<Entry, { parent: number; name: string; path: string }>();

  /** The relative path of a memdb entry, or undefined when it is no longer in the tree. */
  pathOf(e: Entry): string | undefined {
    const c = this.paths.get(e);
    const m = this.db.memdb;
    if (c && c.parent === e.parent && c.name === e.name && m.byInodeNumber(e.inode) === e) {
      return c.path;
    }
    const path = this.walkPath(e);
    if (path !== undefined) this.paths.set(e, { parent: e.parent, name: e.name, path });
    return path;
  }

  private walkPath(e: Entry): string | undefined {
    const parts: string[] = [];
    const m = this.db.memdb;
    let cur: Entry | undefined = e;
    while (cur && cur.inode !== 0) {
      parts.push(cur.name);
      const parent: Entry | undefined = m.byInodeNumber(cur.parent);
      if (!parent || parent.children?.get(cur.name) !== cur) return undefined;
      cur = parent;
    }
    return cur ? parts.reverse().join("/") : undefined;
  }

  /** Routes a relative path (spec 7.1). */
  resolve(rel: string): Node | Errno {
    const c = components(rel);
    if (c.length === 0) return { kind: "root" };
    if (SYNTHETIC.includes(c[0])) {
      if (c.length > 1) return Errno.EACCES;
      return this.synthetic(c[0])!;
    }
    const e = this.db.memdb.lookup(rel);
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
      for (const e of this.db.memdb.root.children!.values()) {
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
    const m = this.db.memdb;
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
  private writable(rel: string): Errno | 0 {
    const c = components(rel);
    if (c.length > 0 && SYNTHETIC.includes(c[0])) return Errno.EACCES;
    if (c.length === 0) return Errno.EACCES;
    return this.opts.quorate() ? 0 : Errno.EACCES;
  }

  mkdir(rel: string): FsResult {
    const w = this.writable(rel);
    return w ? err(w) : this.db.mkdir(rel, this.stamp());
  }

  create(rel: string): FsResult {
    const w = this.writable(rel);
    return w ? err(w) : this.db.create(rel, this.stamp());
  }

  /** Replaces the whole content of `rel` in one update (one version bump). */
  writeWhole(rel: string, content: Uint8Array): FsResult {
    const w = this.writable(rel);
    return w ? err(w) : this.db.write(rel, this.stamp(), content, 0, true);
  }

  write(rel: string, data: Uint8Array, offset: number): FsResult {
    const w = this.writable(rel);
    return w ? err(w) : this.db.write(rel, this.stamp(), data, offset, false);
  }

  truncate(rel: string, size: number): FsResult {
    const w = this.writable(rel);
    if (w) return err(w);
    if (size > Limits.maxFileSize) return err(Errno.EFBIG);
    return this.db.truncate(rel, this.stamp(), size);
  }

  delete(rel: string): FsResult {
    const w = this.writable(rel);
    return w ? err(w) : this.db.delete(rel, this.stamp());
  }

  rename(from: string, to: string): FsResult {
    // Both sides must route to memdb with a sub-path (spec 8.2).
    const wf = this.writable(from);
    const wt = this.writable(to);
    if (wf || wt) return err(wf || wt);
    return this.db.rename(from, to, this.stamp());
  }

  /** utimens with both times set: memdb utime, or an unlock request at mtime 0. */
  utime(rel: string, mtime: number): FsResult {
    const w = this.writable(rel);
    if (w) return err(w);
    const s = this.stamp();
    const e = this.db.memdb.lookup(rel);
    const canon = components(rel).join("/");
    if (mtime === 0 && e && e.type === EntryType.Dir && isUnderLockDir(canon)) {
      return this.db.unlockRequest(canon, s);
    }
    return this.db.utime(rel, { ...s, mtime });
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
    return this.db.memdb.statfs();
  }
}

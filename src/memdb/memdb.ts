/**
 * The in-memory tree and its operations (spec 2.8), without I/O: time and
 * writer are inputs, and every mutation returns the rows it changed so the
 * caller can persist them before it reports the result.
 */
import { type Entry, entrySize, EntryType, Limits } from "./entry.ts";
import { Errno } from "../util/errno.ts";
import { buildIndex, entryChecksum, toHex, treeChecksum, type TreeIndex } from "./checksum.ts";
import { ChangeCounters } from "./counters.ts";
import { buildTree, type LoadedTree, type Row } from "./load.ts";
import { LockTable } from "./locks.ts";
import {
  components,
  guestTypeOfDir,
  isBadName,
  isLockPath,
  isUnderLockDir,
  isValidNodeName,
  parseVmConfigPath,
  vmidOfName,
} from "./path.ts";
import { VmList } from "./vmlist.ts";
import type { GuestType } from "./path.ts";
import type { Op } from "./op.ts";

/** A directory entry name: `name` in the directory with inode `parent`. */
export interface NameRef {
  parent: number;
  name: string;
}

/**
 * What a mutation changed: rows to write, inodes removed, and the names that
 * no longer lead where they did (removed or replaced). The root
 * (`__version__` row) always changes too.
 */
export interface Change {
  upsert: Entry[];
  remove: number[];
  names: NameRef[];
}

/** An empty change. */
export function noChange(): Change {
  return { upsert: [], remove: [], names: [] };
}

/** Outcome of a mutation: `errno` 0 and a change, or an errno and nothing changed. */
export type MutationResult =
  | { errno: 0; value: number; change: Change }
  | { errno: Exclude<Errno, 0>; value?: undefined; change?: undefined };

/** Who makes a change, when (entry mtime), and the node's own clock (lock ages). */
export interface Stamp {
  writer: number;
  mtime: number;
  /** Local clock for lock bookkeeping; defaults to `mtime`. */
  now?: number;
}

/** A VM config found in the tree: its node, guest type, inode and path. */
export interface VmFound {
  node: string;
  type: GuestType;
  inode: number;
  path: string;
}

/** A file's state before a write (see `Memdb.saveFile`). */
export interface FileState {
  readonly e: Entry;
  readonly data: Uint8Array | null;
  readonly version: number;
  readonly writer: number;
  readonly mtime: number;
  readonly root: [number, number, number];
}

export interface StatFs {
  bsize: number;
  blocks: number;
  bfree: number;
  files: number;
  ffree: number;
  namemax: number;
}

function fail(errno: Exclude<Errno, 0>): MutationResult {
  return { errno };
}

function blocksOf(bytes: number): number {
  return Math.ceil(bytes / Limits.blockSize);
}

/**
 * The content after writing `data` at `offset` into `old` (spec 2.8 write):
 * the file grows to the end of the data, zero-filled in between; with
 * `truncate` it ends there. `null` stands for empty. Never changes `old`;
 * a whole-file write keeps `data` itself when it owns its buffer (ops are
 * never changed once made), so the common update copies nothing.
 */
export function writeContent(
  old: Uint8Array | null,
  data: Uint8Array,
  offset: number,
  truncate: boolean,
): Uint8Array | null {
  const oldSize = old ? old.length : 0;
  const end = offset + data.length;
  const newSize = end > oldSize ? end : truncate ? end : oldSize;
  if (newSize === 0) return null;
  if (old && newSize === oldSize && data.length === 0) return old;
  if (offset === 0 && data.length === newSize) {
    const owns = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    return owns ? data : data.slice();
  }
  const content = new Uint8Array(newSize);
  if (old) content.set(newSize < oldSize ? old.subarray(0, newSize) : old);
  content.set(data, offset);
  return content;
}

export class Memdb {
  root: Entry;
  private byInode: Map<number, Entry>;
  private totalBytes = 0;
  /** Sticky: once set, every mutation fails with EIO (spec 2.7). */
  errors = false;
  readonly vmlist = new VmList();
  readonly locks = new LockTable();
  readonly counters = new ChangeCounters();
  /** Messages of the last reload that an operator should see (duplicate VMIDs...). */
  warnings: string[] = [];

  private constructor(tree: LoadedTree, now: number) {
    this.root = tree.root;
    this.byInode = tree.byInode;
    this.install(now);
  }

  /** A tree from database rows; throws `LoadError` on any corruption. */
  static load(rows: Iterable<Row>, now: number): Memdb {
    return new Memdb(buildTree(rows), now);
  }

  /** An empty tree as a fresh database holds it (global version 1). */
  static fresh(now: number): Memdb {
    const db = Memdb.load([], now);
    db.root.version = 1;
    db.root.mtime = now;
    return db;
  }

  /**
   * Swaps in a whole new tree (cluster resync), from rows or an already built
   * tree, and returns what differs from the old one: entries that are new or
   * at another version, inodes that are gone, names that changed.
   */
  replace(source: Iterable<Row> | LoadedTree, now: number): Change {
    const tree = "byInode" in source ? source : buildTree(source);
    const old = this.byInode;
    this.root = tree.root;
    this.byInode = tree.byInode;
    this.install(now);
    const change = noChange();
    for (const [inode, e] of tree.byInode) {
      const was = old.get(inode);
      if (!was || was.version !== e.version) change.upsert.push(e);
    }
    for (const [inode, was] of old) {
      const now = tree.byInode.get(inode);
      if (!now) change.remove.push(inode);
      if (!now || now.parent !== was.parent || now.name !== was.name) {
        if (inode !== 0) change.names.push({ parent: was.parent, name: was.name });
      }
    }
    return change;
  }

  /** Derived state of a freshly installed tree: sizes, VM list, locks, counters. */
  private install(now: number): void {
    this.totalBytes = 0;
    for (const e of this.byInode.values()) this.totalBytes += entrySize(e);
    this.warnings = this.rebuildVmList();
    this.locks.rebuild(this.currentLocks(), now);
    this.counters.bumpAll();
  }

  // ---- queries -------------------------------------------------------------

  get version(): number {
    return this.root.version;
  }

  get entryCount(): number {
    return this.byInode.size;
  }

  /** The entry at `path`, or undefined. Lookups inside files fail. */
  lookup(path: string): Entry | undefined {
    let e: Entry | undefined = this.root;
    for (const c of components(path)) {
      e = e.children?.get(c);
      if (!e) return undefined;
    }
    return e;
  }

  byInodeNumber(inode: number): Entry | undefined {
    return this.byInode.get(inode);
  }

  /**
   * The path of the entry with `inode` ("" for the root), or undefined when it
   * is not in the tree. Walks up the parents, so it is right whatever was
   * renamed above the entry.
   */
  pathOf(inode: number): string | undefined {
    let e = this.byInode.get(inode);
    if (!e) return undefined;
    const parts: string[] = [];
    while (e.inode !== 0) {
      parts.push(e.name);
      e = this.byInode.get(e.parent);
      if (!e) return undefined;
    }
    return parts.reverse().join("/");
  }

  /** Whole content of a file; ENOENT for a missing path or a directory. */
  read(path: string): Uint8Array | Errno {
    const e = this.lookup(path);
    if (!e || e.type !== EntryType.File) return Errno.ENOENT;
    return e.data ?? new Uint8Array(0);
  }

  /** Children of a directory; empty for a missing path or a file (Quirk Q13). */
  readdir(path: string): Entry[] {
    const e = this.lookup(path);
    return e?.children ? [...e.children.values()] : [];
  }

  statfs(): StatFs {
    return {
      bsize: Limits.blockSize,
      blocks: Limits.totalBlocks,
      bfree: Math.max(0, Limits.totalBlocks - blocksOf(this.totalBytes)),
      files: Limits.maxInodes,
      ffree: Math.max(0, Limits.maxInodes - this.byInode.size),
      namemax: Limits.nameMax,
    };
  }

  /** All entries, root included, sorted by inode. */
  sortedEntries(): Entry[] {
    return [...this.byInode.values()].sort((a, b) => a.inode - b.inode);
  }

  treeChecksum(): Uint8Array {
    return treeChecksum(this.sortedEntries());
  }

  index(): TreeIndex {
    return buildIndex(this.sortedEntries(), this.root);
  }

  /** Database rows of the whole tree, `__version__` first. */
  *rows(): Generator<Row> {
    yield {
      inode: 0,
      parent: 0,
      version: this.root.version,
      writer: this.root.writer,
      mtime: this.root.mtime,
      type: EntryType.Dir,
      name: "__version__",
      data: null,
    };
    for (const e of this.byInode.values()) {
      if (e.inode === 0) continue;
      yield { ...e, data: e.data };
    }
  }

  // ---- mutations -----------------------------------------------------------

  /** Applies one operation (the one door for changes from outside the core). */
  apply(op: Op, s: Stamp): MutationResult {
    switch (op.type) {
      case "write":
        return this.write(op.path, s, op.data, op.offset, op.truncate);
      case "create":
        return this.create(op.path, s);
      case "mkdir":
        return this.mkdir(op.path, s);
      case "delete":
        return this.delete(op.path, s);
      case "rename":
        return this.rename(op.path, op.to, s);
      case "mtime":
        return this.utime(op.path, { ...s, mtime: op.mtime });
      case "unlockRequest":
        return this.unlockRequest(op.path, s);
    }
  }

  /**
   * The state of file `path` before a write, for `restoreFile` (undefined
   * when it is no file). The store takes one before each write it commits.
   */
  saveFile(path: string): FileState | undefined {
    const e = this.lookup(path);
    if (!e || e.type !== EntryType.File) return undefined;
    const r = this.root;
    return {
      e,
      data: e.data,
      version: e.version,
      writer: e.writer,
      mtime: e.mtime,
      root: [r.version, r.writer, r.mtime],
    };
  }

  /** Puts a file back as `saveFile` found it (its write could not be persisted). */
  restoreFile(s: FileState): void {
    this.totalBytes += (s.data?.length ?? 0) - (s.e.data?.length ?? 0);
    Object.assign(s.e, { data: s.data, version: s.version, writer: s.writer, mtime: s.mtime });
    [this.root.version, this.root.writer, this.root.mtime] = s.root;
  }

  /**
   * Applies the writes of one file handle as ONE update, all or nothing: the
   * writes are folded over the current content and stored as one whole-file
   * write (one version bump). Any other batch than writes to one path is
   * EINVAL; a single op is applied as it is.
   */
  applyAll(ops: readonly Op[], s: Stamp): MutationResult {
    if (ops.length === 1) return this.apply(ops[0], s);
    if (ops.length === 0) return fail(Errno.EINVAL);
    const path = ops[0].path;
    let content = this.lookup(path)?.data ?? null;
    for (const op of ops) {
      if (op.type !== "write" || op.path !== path) return fail(Errno.EINVAL);
      if (!(op.offset >= 0) || op.offset + op.data.length > Limits.maxFileSize) {
        return fail(Errno.EFBIG);
      }
      content = writeContent(content, op.data, op.offset, op.truncate);
    }
    return this.write(path, s, content ?? new Uint8Array(0), 0, true);
  }

  /** Resolves dirname/basename of `path` for an operation that names an entry. */
  private parentOf(c: string[]): Entry | Errno {
    let d: Entry = this.root;
    for (let i = 0; i < c.length - 1; i++) {
      const next = d.children?.get(c[i]);
      if (!next) return Errno.ENOENT;
      d = next;
    }
    return d.children ? d : Errno.ENOTDIR;
  }

  /**
   * Where an operation on `path` acts: its components, the parent directory
   * and the last name; ENOENT/ENOTDIR for a bad parent, EACCES for a bad name.
   */
  private place(path: string): { c: string[]; parent: Entry; name: string } | Errno {
    const c = components(path);
    const parent = this.parentOf(c);
    if (typeof parent === "number") return parent;
    const name = c.length ? c[c.length - 1] : "";
    return isBadName(name) ? Errno.EACCES : { c, parent, name };
  }

  private bump(s: Stamp, e?: Entry): number {
    const v = ++this.root.version;
    this.root.writer = s.writer;
    this.root.mtime = s.mtime;
    if (e) {
      e.version = v;
      e.writer = s.writer;
      e.mtime = s.mtime;
    }
    return v;
  }

  private newEntry(parent: Entry, name: string, type: EntryType, s: Stamp): Entry {
    const v = this.bump(s);
    const e: Entry = {
      inode: v,
      parent: parent.inode,
      version: v,
      writer: s.writer,
      mtime: s.mtime,
      type,
      name,
      data: null,
      children: type === EntryType.Dir ? new Map() : null,
    };
    parent.children!.set(name, e);
    this.byInode.set(v, e);
    return e;
  }

  mkdir(path: string, s: Stamp): MutationResult {
    if (this.errors) return fail(Errno.EIO);
    const at = this.place(path);
    if (typeof at === "number") return fail(at);
    const { c, parent, name } = at;
    if (parent.children!.has(name)) return fail(Errno.EEXIST);
    if (this.byInode.size >= Limits.maxInodes) return fail(Errno.ENOSPC);
    const e = this.newEntry(parent, name, EntryType.Dir, s);
    const rel = c.join("/");
    if (isLockPath(rel)) this.locks.touch(rel, toHex(entryChecksum(e)), s.now ?? s.mtime);
    return { errno: 0, value: 0, change: { upsert: [e], remove: [], names: [] } };
  }

  /** Creates an empty file; EEXIST when anything of that name exists. */
  create(path: string, s: Stamp): MutationResult {
    return this.writeImpl(path, s, new Uint8Array(0), 0, false, true);
  }

  /** Writes `data` at `offset`; `truncate` cuts the file at the end of the data. */
  write(path: string, s: Stamp, data: Uint8Array, offset: number, truncate: boolean) {
    return this.writeImpl(path, s, data, offset, truncate, false);
  }

  /** Sets the size to `length`, zero-extending (sane Quirk Q1). */
  truncate(path: string, s: Stamp, length: number): MutationResult {
    return this.writeImpl(path, s, new Uint8Array(0), length, true, false);
  }

  private writeImpl(
    path: string,
    s: Stamp,
    data: Uint8Array,
    offset: number,
    truncate: boolean,
    create: boolean,
  ): MutationResult {
    if (this.errors) return fail(Errno.EIO);
    const end = offset + data.length;
    if (!(offset >= 0) || end > Limits.maxFileSize) return fail(Errno.EFBIG);
    const at = this.place(path);
    if (typeof at === "number") return fail(at);
    const { c, parent, name } = at;
    const rel = c.join("/");
    const vm = parseVmConfigPath(rel);
    if (vm && this.vmlist.conflicts(vm.vmid, vm.node, vm.type)) return fail(Errno.EEXIST);
    let e = parent.children!.get(name);
    if (e) {
      if (e.type === EntryType.Dir) return fail(Errno.ENOTDIR);
      if (create) return fail(Errno.EEXIST);
    } else if (!create) {
      return fail(Errno.ENOENT);
    }
    const old = e?.data ?? null;
    const oldSize = old ? old.length : 0;
    const newSize = end > oldSize ? end : truncate ? end : oldSize;
    if (!e && this.byInode.size >= Limits.maxInodes) return fail(Errno.ENOSPC);
    const newTotal = this.totalBytes - oldSize + newSize;
    if (newSize > oldSize && blocksOf(newTotal) > Limits.totalBlocks) return fail(Errno.ENOSPC);

    const content = writeContent(old, data, offset, truncate);
    if (e) this.bump(s, e);
    else e = this.newEntry(parent, name, EntryType.File, s);
    e.data = content;
    this.totalBytes = newTotal;
    if (vm) this.vmlist.register(vm.vmid, vm.node, vm.type);
    this.counters.bump(rel);
    return {
      errno: 0,
      value: create ? 0 : data.length,
      change: { upsert: [e], remove: [], names: [] },
    };
  }

  /** Sets the mtime (spec 2.8 utime); locks only move forward, by their owner. */
  utime(path: string, s: Stamp): MutationResult {
    if (this.errors) return fail(Errno.EIO);
    const at = this.place(path);
    if (typeof at === "number") return fail(at);
    const { c, parent, name } = at;
    const e = parent.children!.get(name);
    if (!e) return fail(Errno.ENOENT);
    const rel = c.join("/");
    const lock = e.type === EntryType.Dir && isLockPath(rel);
    if (lock && (s.mtime < e.mtime || s.writer !== e.writer)) return fail(Errno.EACCES);
    this.bump(s, e);
    if (lock) this.locks.touch(rel, toHex(entryChecksum(e)), s.now ?? s.mtime);
    this.counters.bump(rel);
    return { errno: 0, value: 0, change: { upsert: [e], remove: [], names: [] } };
  }

  /** Removes a file or an empty directory (unlink and rmdir alike). */
  delete(path: string, s: Stamp): MutationResult {
    if (this.errors) return fail(Errno.EIO);
    const c = components(path);
    if (c.length === 0) return this.lookup("") ? fail(Errno.EACCES) : fail(Errno.ENOENT);
    const parent = this.parentOf(c);
    if (typeof parent === "number") return fail(Errno.ENOENT);
    const e = parent.children!.get(c[c.length - 1]);
    if (!e) return fail(Errno.ENOENT);
    if (e.children && e.children.size > 0) return fail(Errno.ENOTEMPTY);
    const rel = c.join("/");
    if (e.children) this.locks.drop(rel);
    this.unlink(parent, e);
    this.bump(s);
    const vm = parseVmConfigPath(rel);
    if (vm) this.vmlist.remove(vm.vmid);
    this.counters.bump(rel);
    const names = [{ parent: parent.inode, name: e.name }];
    return { errno: 0, value: 0, change: { upsert: [], remove: [e.inode], names } };
  }

  private unlink(parent: Entry, e: Entry): void {
    parent.children!.delete(e.name);
    this.byInode.delete(e.inode);
    this.totalBytes -= entrySize(e);
  }

  /**
   * Moves `from` to `to`, replacing `to`. Only files and empty directories
   * move. Unlike the original, everything is validated before anything
   * changes (Quirk Q3), with the kernel's errnos for the cases it filters.
   */
  rename(from: string, to: string, s: Stamp): MutationResult {
    if (this.errors) return fail(Errno.EIO);
    const fc = components(from);
    const src = this.lookup(from);
    if (!src) return fail(Errno.ENOENT);
    if (fc.length === 0) return fail(Errno.EACCES);
    const fromRel = fc.join("/");
    const tc = components(to);
    const toRel = tc.join("/");
    const fromVm = parseVmConfigPath(fromRel);
    const toVm = parseVmConfigPath(toRel);
    if (
      src.type === EntryType.File && toVm && this.vmlist.conflicts(toVm.vmid, toVm.node, toVm.type)
    ) {
      if (!fromVm || fromVm.vmid !== toVm.vmid) return fail(Errno.EEXIST);
    }
    if (src.type === EntryType.Dir && isUnderLockDir(fromRel)) return fail(Errno.EACCES);

    const tname = tc.length ? tc[tc.length - 1] : "";
    if (isBadName(tname)) return fail(Errno.EACCES);
    const tparent = this.parentOf(tc);
    if (typeof tparent === "number") return fail(tparent);
    const target = tparent.children!.get(tname);
    if (target === src) return { errno: 0, value: 0, change: noChange() };
    if (target) {
      if (target.children && target.children.size > 0) return fail(Errno.ENOTEMPTY);
      if (target.type === EntryType.Dir && src.type === EntryType.File) return fail(Errno.EISDIR);
      if (target.type === EntryType.File && src.type === EntryType.Dir) return fail(Errno.ENOTDIR);
    }
    if (src.children && src.children.size > 0) return fail(Errno.ENOTEMPTY);
    if (tparent === src) return fail(Errno.EINVAL);

    const sparent = this.byInode.get(src.parent)!;
    const remove: number[] = [];
    const names = [{ parent: sparent.inode, name: src.name }, {
      parent: tparent.inode,
      name: tname,
    }];
    if (target) {
      this.unlink(tparent, target);
      if (target.children) this.locks.drop(toRel);
      remove.push(target.inode);
    }
    sparent.children!.delete(src.name);
    src.parent = tparent.inode;
    src.name = tname;
    tparent.children!.set(tname, src);
    this.bump(s, src);
    if (src.type === EntryType.File) {
      if (fromVm) this.vmlist.remove(fromVm.vmid);
      if (toVm) this.vmlist.register(toVm.vmid, toVm.node, toVm.type);
    }
    this.counters.bump(fromRel);
    this.counters.bump(toRel);
    return { errno: 0, value: 0, change: { upsert: [src], remove, names } };
  }

  /**
   * Local-mode unlock request (spec 6.3): deletes the lock at `path` if this
   * node has seen the same incarnation for more than 120 s; otherwise the
   * utime to 0 that follows fails with EACCES, as in the original.
   */
  unlockRequest(path: string, s: Stamp): MutationResult {
    const e = this.lookup(path);
    const rel = components(path).join("/");
    if (e && e.type === EntryType.Dir && isUnderLockDir(rel)) {
      if (this.lockExpired(rel, s.now ?? s.mtime)) return this.delete(rel, s);
    }
    return this.utime(path, { ...s, mtime: 0 });
  }

  /** "Is expired?" for the lock at `path` as it is now; false when it is gone. */
  lockExpired(path: string, now: number): boolean {
    const e = this.lookup(path);
    if (!e || e.type !== EntryType.Dir) return false;
    return this.locks.isExpired(components(path).join("/"), toHex(entryChecksum(e)), now);
  }

  // ---- derived state ---------------------------------------------------------

  private currentLocks(): [string, string][] {
    const dir = this.lookup("priv/lock");
    if (!dir?.children) return [];
    return [...dir.children.values()]
      .filter((e) => e.type === EntryType.Dir)
      .map((e) => [`priv/lock/${e.name}`, toHex(entryChecksum(e))]);
  }

  /**
   * Rebuilds the VM list from `nodes/*\/{qemu-server,lxc,openvz}`. Sane Quirk
   * Q4: non-directories are skipped and a duplicate VMID keeps the entry with
   * the lowest inode; each duplicate is reported as a warning.
   */
  private rebuildVmList(): string[] {
    const { vms, warnings } = this.vmListOfTree();
    if (vms) this.vmlist.replace(vms);
    return warnings;
  }

  /**
   * The VM list a rebuild from the tree gives (spec 5.3), without installing
   * it; `vms` is undefined when there is no `nodes` directory (the rebuild is
   * skipped). The live list can drift from it: see the simulator's check.
   */
  vmListOfTree(): { vms?: Map<number, VmFound>; warnings: string[] } {
    const warnings: string[] = [];
    const nodes = this.root.children!.get("nodes");
    if (!nodes?.children) return { warnings };
    const found = new Map<number, VmFound>();
    for (const node of nodes.children.values()) {
      if (!node.children || !isValidNodeName(node.name)) continue;
      for (const dir of node.children.values()) {
        const type = guestTypeOfDir(dir.name);
        if (!type || !dir.children) continue;
        for (const f of dir.children.values()) {
          const vmid = f.type === EntryType.File ? vmidOfName(f.name) : undefined;
          if (vmid === undefined) continue;
          const path = `nodes/${node.name}/${dir.name}/${f.name}`;
          const prev = found.get(vmid);
          if (prev) {
            const keep = prev.inode < f.inode ? prev.path : path;
            warnings.push(`duplicate VMID ${vmid}: ${prev.path} and ${path}; keeping ${keep}`);
            if (prev.inode < f.inode) continue;
          }
          found.set(vmid, { node: node.name, type, inode: f.inode, path });
        }
      }
    }
    return { vms: found, warnings };
  }
}

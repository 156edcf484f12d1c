/**
 * Builds a tree from database rows and validates it (spec 4.5), refusing
 * every corruption the original would load silently (Quirks Q7-Q9).
 */
import { type Entry, EntryType } from "./entry.ts";

/** One `tree` row as read from config.db; `name` is a byte string. */
export interface Row {
  inode: number;
  parent: number;
  version: number;
  writer: number;
  mtime: number;
  type: number;
  name: string | null;
  data: Uint8Array | null;
}

export interface LoadedTree {
  root: Entry;
  byInode: Map<number, Entry>;
  /** False when the database had no rows at all (a fresh database). */
  hasVersionRow: boolean;
}

export class LoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LoadError";
  }
}

const U32 = 0x100000000;

function describe(r: Row): string {
  const name = r.name === null ? "NULL" : JSON.stringify(r.name);
  return `row inode ${r.inode} (name ${name})`;
}

/** Builds the tree; throws `LoadError` naming the offending row. */
export function buildTree(rows: Iterable<Row>): LoadedTree {
  const root: Entry = {
    inode: 0,
    parent: 0,
    version: 0,
    writer: 0,
    mtime: 0,
    type: EntryType.Dir,
    name: "",
    data: null,
    children: new Map(),
  };
  const byInode = new Map<number, Entry>([[0, root]]);
  const pending: Row[] = [];
  let hasVersionRow = false;
  let maxSeen = 0;

  for (const r of rows) {
    for (const k of ["inode", "parent", "version", "writer", "mtime", "type"] as const) {
      const v = r[k];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        throw new LoadError(`${describe(r)}: ${k} ${String(v)} is not a valid integer`);
      }
    }
    if (r.name === null || r.name === "") throw new LoadError(`${describe(r)}: empty name`);
    const type = r.type % 256;
    if (r.inode === 0) {
      if (r.name !== "__version__") {
        throw new LoadError(`${describe(r)}: inode 0 must be the __version__ row`);
      }
      root.version = r.version;
      root.writer = r.writer % U32;
      root.mtime = r.mtime % U32;
      hasVersionRow = true;
      continue;
    }
    if (type !== EntryType.File && type !== EntryType.Dir) {
      throw new LoadError(`${describe(r)}: unknown type ${r.type}`);
    }
    if (type === EntryType.Dir && r.data && r.data.length > 0) {
      throw new LoadError(`${describe(r)}: directory with ${r.data.length} bytes of data`);
    }
    const e: Entry = {
      inode: r.inode,
      parent: r.parent,
      version: r.version,
      writer: r.writer % U32,
      mtime: r.mtime % U32,
      type,
      name: r.name,
      data: type === EntryType.File && r.data && r.data.length > 0 ? r.data : null,
      children: type === EntryType.Dir ? new Map() : null,
    };
    if (byInode.has(e.inode)) throw new LoadError(`${describe(r)}: duplicate inode`);
    byInode.set(e.inode, e);
    pending.push(r);
    maxSeen = Math.max(maxSeen, e.inode, e.version);
  }

  if (!hasVersionRow && pending.length > 0) {
    throw new LoadError("no __version__ row although the tree has entries");
  }
  if (root.version < maxSeen) {
    throw new LoadError(
      `__version__ row has version ${root.version}, below inode/version ${maxSeen} in the tree`,
    );
  }

  for (const r of pending) {
    const e = byInode.get(r.inode)!;
    const parent = byInode.get(r.parent);
    if (!parent) throw new LoadError(`${describe(r)}: parent inode ${r.parent} does not exist`);
    if (!parent.children) {
      throw new LoadError(`${describe(r)}: parent inode ${r.parent} is not a directory`);
    }
    if (parent.children.has(e.name)) {
      throw new LoadError(`${describe(r)}: a second entry of that name in inode ${r.parent}`);
    }
    parent.children.set(e.name, e);
  }

  // Every entry must hang off the root: this catches cycles and self-parents.
  let reached = 0;
  const stack: Entry[] = [root];
  while (stack.length) {
    const d = stack.pop()!;
    reached++;
    if (d.children) { for (const c of d.children.values()) stack.push(c); }
  }
  if (reached !== byInode.size) {
    const seen = new Set<number>();
    const walk = (d: Entry) => {
      seen.add(d.inode);
      if (d.children) { for (const c of d.children.values()) walk(c); }
    };
    walk(root);
    const lost = pending.find((r) => !seen.has(r.inode))!;
    throw new LoadError(`${describe(lost)}: not reachable from the root (cycle)`);
  }
  return { root, byInode, hasVersionRow };
}

/**
 * Entry records, the tree checksum, the single-entry checksum and the index
 * (spec 3). All integers little-endian; names and data as raw bytes.
 */
import { createHash, type Hash } from "node:crypto";
import { type Entry, EntryType } from "./entry.ts";

const header = new Uint8Array(37);
const view = new DataView(header.buffer);

function u64(at: number, v: number): void {
  view.setUint32(at, v % 0x100000000, true);
  view.setUint32(at + 4, Math.floor(v / 0x100000000), true);
}

/** Latin-1 bytes of a byte string (every char code is one byte). */
export function nameBytes(name: string): Uint8Array {
  const b = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i);
  return b;
}

/** Feeds one entry record into `hash`, with or without the leading inode. */
export function hashEntryRecord(hash: Hash, e: Entry, withInode: boolean): void {
  const size = e.data ? e.data.length : 0;
  u64(0, e.inode);
  u64(8, e.version);
  view.setUint32(16, e.writer >>> 0, true);
  view.setUint32(20, e.mtime >>> 0, true);
  view.setUint32(24, size, true);
  header[28] = e.type;
  u64(29, e.parent);
  hash.update(withInode ? header : header.subarray(8));
  if (e.name.length > 0) hash.update(nameBytes(e.name));
  if (e.type === EntryType.File && e.data && size > 0) hash.update(e.data);
}

/** SHA-256 of one entry record with inode (identifies a lock incarnation). */
export function entryChecksum(e: Entry): Uint8Array {
  const h = createHash("sha256");
  hashEntryRecord(h, e, true);
  return new Uint8Array(h.digest());
}

/** SHA-256 over all entries (sorted by inode), records with inode. */
export function treeChecksum(sorted: readonly Entry[]): Uint8Array {
  const h = createHash("sha256");
  for (const e of sorted) hashEntryRecord(h, e, true);
  return new Uint8Array(h.digest());
}

/** The state summary exchanged during cluster sync (spec 3.3). */
export interface TreeIndex {
  version: number;
  lastInode: number;
  writer: number;
  mtime: number;
  entries: { inode: number; digest: Uint8Array }[];
}

/** Builds the index of entries sorted by inode (root first). */
export function buildIndex(
  sorted: readonly Entry[],
  root: { version: number; writer: number; mtime: number },
): TreeIndex {
  const entries = sorted.map((e) => {
    const h = createHash("sha256");
    hashEntryRecord(h, e, false);
    return { inode: e.inode, digest: new Uint8Array(h.digest()) };
  });
  return {
    version: root.version,
    lastInode: sorted.length ? sorted[sorted.length - 1].inode : 0,
    writer: root.writer,
    mtime: root.mtime,
    entries,
  };
}

/** Encodes an index to its binary layout: 32 + 40 × count bytes. */
export function encodeIndex(idx: TreeIndex): Uint8Array {
  const bytes = 32 + 40 * idx.entries.length;
  const out = new Uint8Array(bytes);
  const dv = new DataView(out.buffer);
  const put64 = (at: number, v: number) => {
    dv.setUint32(at, v % 0x100000000, true);
    dv.setUint32(at + 4, Math.floor(v / 0x100000000), true);
  };
  put64(0, idx.version);
  put64(8, idx.lastInode);
  dv.setUint32(16, idx.writer >>> 0, true);
  dv.setUint32(20, idx.mtime >>> 0, true);
  dv.setUint32(24, idx.entries.length, true);
  dv.setUint32(28, bytes, true);
  idx.entries.forEach((e, i) => {
    put64(32 + 40 * i, e.inode);
    out.set(e.digest, 40 + 40 * i);
  });
  return out;
}

/** Decodes a binary index; throws on a length that does not add up. */
export function decodeIndex(buf: Uint8Array): TreeIndex {
  if (buf.length < 32) throw new Error(`index too short: ${buf.length} bytes`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const get64 = (at: number) => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x100000000;
  const count = dv.getUint32(24, true);
  const bytes = dv.getUint32(28, true);
  if (bytes !== 32 + 40 * count || bytes !== buf.length) {
    throw new Error(`index size mismatch: count ${count}, bytes ${bytes}, got ${buf.length}`);
  }
  const entries = [];
  for (let i = 0; i < count; i++) {
    entries.push({
      inode: get64(32 + 40 * i),
      digest: buf.slice(40 + 40 * i, 72 + 40 * i),
    });
  }
  return {
    version: get64(0),
    lastInode: get64(8),
    writer: dv.getUint32(16, true),
    mtime: dv.getUint32(20, true),
    entries,
  };
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

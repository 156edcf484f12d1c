/**
 * Wire codecs of the database group (cluster spec 5.2-5.3, 5.7, 5.10): the
 * FUSE message of NORMAL subtypes 1-6 <-> an `Op`, the unlock message of
 * subtypes 7 and 8, the UPDATE payload <-> a tree row, the STATE payload (the
 * memdb index) with the receiver checks of 5.7. Pure: no I/O, no state.
 *
 * Decoders never throw on peer input: they return `{ ok: false, error }`
 * where `error` is the line to log (critical) before rejecting the message.
 * Encoders throw on values the wire cannot carry (a programming error).
 *
 * @example
 * ```ts
 * import { decodeFuseMessage, encodeFuseMessage } from "./codec.ts";
 * const { subtype, payload } = encodeFuseMessage({ type: "mkdir", path: "nodes" });
 * const back = decodeFuseMessage(subtype, payload); // { ok: true, value: { type: "mkdir", ... } }
 * ```
 */
import type { Op } from "../memdb/op.ts";
import type { Row } from "../memdb/load.ts";
import { decodeIndex, type TreeIndex } from "../memdb/checksum.ts";
import { EntryType } from "../memdb/entry.ts";

/** NORMAL message subtypes of the database group (spec 5.2). */
export const DcdbMsg = {
  Write: 1,
  Mkdir: 2,
  Delete: 3,
  Rename: 4,
  Create: 5,
  Mtime: 6,
  UnlockRequest: 7,
  Unlock: 8,
} as const;
export type DcdbMsg = (typeof DcdbMsg)[keyof typeof DcdbMsg];

/** The operations that travel as one FUSE message (all but the unlock request). */
export type FuseOp = Exclude<Op, { type: "unlockRequest" }>;

/** A decoded value, or the critical log line that rejects the input. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

const U32 = 0x100000000;
/** Largest u64 a JS number holds exactly (2^53 - 1); larger values are refused. */
const MAX_U64 = Number.MAX_SAFE_INTEGER;

function bad<T>(error: string): Decoded<T> {
  return { ok: false, error };
}

/** A byte string (one char per byte, as memdb names are) from raw bytes. */
export function byteString(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

/** Raw bytes of a byte string; throws on a char that is not one byte. */
export function stringBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) throw new Error(`path ${JSON.stringify(s)} is not a byte string`);
    b[i] = c;
  }
  return b;
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= U32) throw new Error(`${what} ${v} is not a u32`);
  return v;
}

function u64(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U64) throw new Error(`${what} ${v} is not a u64`);
  return v;
}

function putU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v % U32, true);
  dv.setUint32(at + 4, Math.floor(v / U32), true);
}

/** A u64 as a number, or undefined past 2^53 - 1. */
function getU64(dv: DataView, at: number): number | undefined {
  const hi = dv.getUint32(at + 4, true);
  if (hi >= 0x200000) return undefined;
  return hi * U32 + dv.getUint32(at, true);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// ---- FUSE message (subtypes 1-6) ------------------------------------------

/** Header of the FUSE message: size, offset, pathlen, tolen, flags (5 x u32). */
const FUSE_HEADER = 20;

/**
 * The NORMAL subtype and FUSE message of one operation (spec 5.3-5.4). A
 * write carries its data, offset and truncate flag as they are, so a
 * whole-file update (offset 0, truncate) is ONE message.
 */
export function encodeFuseMessage(op: FuseOp): { subtype: DcdbMsg; payload: Uint8Array } {
  let subtype: DcdbMsg;
  let offset = 0;
  let flags = 0;
  let data: Uint8Array = new Uint8Array(0);
  let to: Uint8Array | undefined;
  switch (op.type) {
    case "write":
      subtype = DcdbMsg.Write;
      offset = u32(op.offset, "offset");
      flags = op.truncate ? 1 : 0;
      data = op.data;
      break;
    case "create":
      subtype = DcdbMsg.Create;
      break;
    case "mkdir":
      subtype = DcdbMsg.Mkdir;
      break;
    case "delete":
      subtype = DcdbMsg.Delete;
      break;
    case "rename":
      subtype = DcdbMsg.Rename;
      to = stringBytes(op.to);
      break;
    case "mtime":
      subtype = DcdbMsg.Mtime;
      offset = u32(op.mtime, "mtime");
      break;
    default:
      throw new Error(`no FUSE message for ${(op as Op).type}`);
  }
  const path = stringBytes(op.path);
  if (path.includes(0) || path.length === 0) throw new Error(`bad path ${JSON.stringify(op.path)}`);
  if (to && (to.includes(0) || to.length === 0)) {
    throw new Error(`bad target ${JSON.stringify(to)}`);
  }
  const pathlen = path.length + 1;
  const tolen = to ? to.length + 1 : 0;
  const size = u32(data.length, "size");
  const out = new Uint8Array(FUSE_HEADER + pathlen + tolen + size);
  const dv = view(out);
  dv.setUint32(0, size, true);
  dv.setUint32(4, offset, true);
  dv.setUint32(8, pathlen, true);
  dv.setUint32(12, tolen, true);
  dv.setUint32(16, flags, true);
  out.set(path, FUSE_HEADER);
  if (to) out.set(to, FUSE_HEADER + pathlen);
  out.set(data, FUSE_HEADER + pathlen + tolen);
  return { subtype, payload: out };
}

/** A NUL-terminated string field without embedded NULs, or the reason it is bad. */
function cString(b: Uint8Array, field: string, prefix: string): Decoded<string> {
  if (b[b.length - 1] !== 0) return bad(`${prefix} - '${field}' not terminated`);
  const body = b.subarray(0, b.length - 1);
  if (body.includes(0)) return bad(`${prefix} - '${field}' contains NUL`);
  return { ok: true, value: byteString(body) };
}

/**
 * Decodes and validates a FUSE message (spec 5.3). Rejected, with the C log
 * texts: shorter than 20 bytes, lengths that do not add up, `path` or `to`
 * not NUL-terminated. Also rejected, as the spec recommends (Quirk C27):
 * embedded NULs, no path, a missing `to` on RENAME or a `to` on anything
 * else, flags other than 0/1 on WRITE, and fields a C sender always leaves 0
 * (flags, size and offset where the type has no use for them).
 */
export function decodeFuseMessage(subtype: number, payload: Uint8Array): Decoded<FuseOp> {
  if (subtype < DcdbMsg.Write || subtype > DcdbMsg.Mtime) {
    return bad(`received unknown message type (msg_type == ${subtype})`);
  }
  if (payload.length < FUSE_HEADER) {
    return bad(`received short fuse message (${payload.length} < ${FUSE_HEADER})`);
  }
  const dv = view(payload);
  const size = dv.getUint32(0, true);
  const offset = dv.getUint32(4, true);
  const pathlen = dv.getUint32(8, true);
  const tolen = dv.getUint32(12, true);
  const flags = dv.getUint32(16, true);
  const prefix = "received mailformed fuse message";
  if (FUSE_HEADER + pathlen + tolen + size !== payload.length) return bad(prefix);
  if (pathlen === 0) return bad(`${prefix} - no 'path'`);
  const path = cString(payload.subarray(FUSE_HEADER, FUSE_HEADER + pathlen), "path", prefix);
  if (!path.ok) return path;
  let to: string | undefined;
  if (tolen > 0) {
    const t = cString(
      payload.subarray(FUSE_HEADER + pathlen, FUSE_HEADER + pathlen + tolen),
      "to",
      prefix,
    );
    if (!t.ok) return t;
    to = t.value;
  }
  if ((subtype === DcdbMsg.Rename) !== (to !== undefined)) {
    return bad(`${prefix} - 'to' ${to ? "on a non-rename message" : "missing"}`);
  }
  if (subtype === DcdbMsg.Write) {
    if (flags > 1) return bad(`${prefix} - flags ${flags}`);
    const data = payload.slice(FUSE_HEADER + pathlen + tolen);
    return {
      ok: true,
      value: { type: "write", path: path.value, offset, data, truncate: flags === 1 },
    };
  }
  if (flags !== 0 || size !== 0 || (offset !== 0 && subtype !== DcdbMsg.Mtime)) {
    return bad(`${prefix} - unused fields set (size ${size}, offset ${offset}, flags ${flags})`);
  }
  switch (subtype) {
    case DcdbMsg.Mkdir:
      return { ok: true, value: { type: "mkdir", path: path.value } };
    case DcdbMsg.Delete:
      return { ok: true, value: { type: "delete", path: path.value } };
    case DcdbMsg.Rename:
      return { ok: true, value: { type: "rename", path: path.value, to: to! } };
    case DcdbMsg.Create:
      return { ok: true, value: { type: "create", path: path.value } };
    default:
      return { ok: true, value: { type: "mtime", path: path.value, mtime: offset } };
  }
}

// ---- unlock message (subtypes 7, 8) ----------------------------------------

/** An UNLOCK_REQUEST or UNLOCK: the lock's single-entry checksum and its path. */
export interface UnlockMessage {
  checksum: Uint8Array;
  path: string;
}

/** Encodes an unlock message: 32-byte checksum, NUL-terminated path. */
export function encodeUnlockMessage(m: UnlockMessage): Uint8Array {
  if (m.checksum.length !== 32) throw new Error(`checksum of ${m.checksum.length} bytes`);
  const path = stringBytes(m.path);
  if (path.includes(0)) throw new Error(`bad path ${JSON.stringify(m.path)}`);
  const out = new Uint8Array(32 + path.length + 1);
  out.set(m.checksum, 0);
  out.set(path, 32);
  return out;
}

/**
 * Decodes an unlock message (spec 5.3): shorter than 33 bytes or a path not
 * NUL-terminated is rejected with the C texts; an embedded NUL too.
 */
export function decodeUnlockMessage(payload: Uint8Array): Decoded<UnlockMessage> {
  if (payload.length < 33) return bad(`received short unlock message (${payload.length} < 33)`);
  const path = cString(payload.subarray(32), "path", "received mailformed unlock message");
  if (!path.ok) return path;
  return { ok: true, value: { checksum: payload.slice(0, 32), path: path.value } };
}

// ---- UPDATE payload (one tree entry, 5.10) ----------------------------------

const UPDATE_HEADER = 41;

/**
 * Encodes one tree row as an UPDATE payload. The root goes with an empty
 * name whatever `row.name` says (`__version__` in the database).
 */
export function encodeUpdate(row: Row): Uint8Array {
  const name = row.inode === 0 ? new Uint8Array(0) : stringBytes(row.name ?? "");
  if (name.includes(0)) throw new Error(`bad name ${JSON.stringify(row.name)}`);
  const data = row.type === EntryType.File && row.data ? row.data : new Uint8Array(0);
  const namelen = name.length + 1;
  const out = new Uint8Array(UPDATE_HEADER + namelen + data.length);
  const dv = view(out);
  putU64(dv, 0, u64(row.parent, "parent"));
  putU64(dv, 8, u64(row.inode, "inode"));
  putU64(dv, 16, u64(row.version, "version"));
  dv.setUint32(24, u32(row.writer, "writer"), true);
  dv.setUint32(28, u32(row.mtime, "mtime"), true);
  dv.setUint32(32, u32(data.length, "size"), true);
  dv.setUint32(36, namelen, true);
  out[40] = row.type;
  out.set(name, UPDATE_HEADER);
  out.set(data, UPDATE_HEADER + namelen);
  return out;
}

/**
 * Decodes an UPDATE payload (spec 5.10) with the C checks and texts, plus the
 * recommended ones: at least 42 bytes, namelen >= 1, no directory content,
 * no NUL inside the name, u64 fields within 2^53. The root keeps its empty
 * name; `data` is null for directories and empty files.
 */
export function decodeUpdate(payload: Uint8Array): Decoded<Row> {
  if (payload.length < UPDATE_HEADER + 1) return bad("received short message (msg_len < 40)");
  const dv = view(payload);
  const parent = getU64(dv, 0);
  const inode = getU64(dv, 8);
  const version = getU64(dv, 16);
  const writer = dv.getUint32(24, true);
  const mtime = dv.getUint32(28, true);
  const size = dv.getUint32(32, true);
  const namelen = dv.getUint32(36, true);
  const type = payload[40];
  if (type !== EntryType.Dir && type !== EntryType.File) {
    return bad(`received mailformed message (unknown inode type ${type})`);
  }
  if (payload.length - UPDATE_HEADER !== size + namelen) {
    return bad("received mailformed message (msg_len != (size + namelen))");
  }
  if (namelen === 0 || payload[UPDATE_HEADER + namelen - 1] !== 0) {
    return bad("received mailformed message (name[namelen-1] != 0)");
  }
  const name = payload.subarray(UPDATE_HEADER, UPDATE_HEADER + namelen - 1);
  if (name.includes(0)) return bad("received mailformed message (NUL inside name)");
  if (type === EntryType.Dir && size > 0) {
    return bad(`received mailformed message (directory with size ${size})`);
  }
  if (parent === undefined || inode === undefined || version === undefined) {
    return bad("received mailformed message (u64 field out of range)");
  }
  const data = size > 0 ? payload.slice(UPDATE_HEADER + namelen) : null;
  return {
    ok: true,
    value: { inode, parent, version, writer, mtime, type, name: byteString(name), data },
  };
}

// ---- STATE payload: the memdb index (5.7) -----------------------------------

/**
 * Validates a received index (spec 5.7): the C checks with their texts
 * (at least 32 bytes, `bytes` = length) and the recommended ones of Quirk
 * C8 (`bytes` = 32 + 40 x count, inodes strictly ascending, root first,
 * `last_inode` = the highest inode).
 */
export function decodeState(state: Uint8Array): Decoded<TreeIndex> {
  if (state.length < 32) return bad("received short memdb index (len < sizeof(memdb_index_t))");
  const dv = view(state);
  const count = dv.getUint32(24, true);
  if (dv.getUint32(28, true) !== state.length) {
    return bad("received mailformed memdb index (len != idx->bytes)");
  }
  if (state.length !== 32 + 40 * count || count === 0) {
    return bad(`received mailformed memdb index (count ${count}, ${state.length} bytes)`);
  }
  for (const at of [0, 8]) {
    if (getU64(dv, at) === undefined) return bad("received mailformed memdb index (u64 range)");
  }
  for (let i = 0; i < count; i++) {
    if (getU64(dv, 32 + 40 * i) === undefined) {
      return bad("received mailformed memdb index (u64 range)");
    }
  }
  const idx = decodeIndex(state);
  if (idx.entries[0].inode !== 0) return bad("received mailformed memdb index (no root entry)");
  for (let i = 1; i < idx.entries.length; i++) {
    if (idx.entries[i].inode <= idx.entries[i - 1].inode) {
      return bad("received mailformed memdb index (entries not sorted)");
    }
  }
  if (idx.lastInode !== idx.entries[idx.entries.length - 1].inode) {
    return bad(`received mailformed memdb index (last_inode ${idx.lastInode})`);
  }
  return { ok: true, value: idx };
}

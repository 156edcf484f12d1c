/** Short builders of `Op`s for tests. */
import type { MutationResult, Stamp } from "../../src/memdb/memdb.ts";
import type { Op } from "../../src/memdb/op.ts";
import { truncateOp } from "../../src/memdb/op.ts";

export const mkdir = (path: string): Op => ({ type: "mkdir", path });
export const create = (path: string): Op => ({ type: "create", path });
export const del = (path: string): Op => ({ type: "delete", path });
export const rename = (path: string, to: string): Op => ({ type: "rename", path, to });
export const mtime = (path: string, m: number): Op => ({ type: "mtime", path, mtime: m });
export const unlockRequest = (path: string): Op => ({ type: "unlockRequest", path });
export const truncate = truncateOp;
export function write(path: string, data: Uint8Array, offset = 0, truncate = false): Op {
  return { type: "write", path, offset, data, truncate };
}

/** Anything that applies ops: the pure core or the persistent database. */
export interface Target {
  apply(op: Op, s: Stamp): MutationResult;
}

/** The memdb utime of the spec: MTIME to the stamp's mtime, by the stamp's writer. */
export function utime(t: Target, path: string, s: Stamp): MutationResult {
  return t.apply(mtime(path, s.mtime), s);
}

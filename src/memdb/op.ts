/**
 * Operations as data: every change to the tree is one `Op`. FUSE handlers
 * build them, the committer applies them (local mode: memdb + config.db; in
 * cluster mode each becomes one dcdb message), tests and the simulator
 * generate them. The fields follow the wire's FUSE message (cluster spec
 * 5.3-5.4) one to one, so the codec is a plain mapping.
 *
 * @example
 * ```ts
 * import type { Op } from "./op.ts";
 * // `echo x > f.cfg` as one whole-file update:
 * const op: Op = { type: "write", path: "f.cfg", offset: 0, data: new Uint8Array([0x78, 0x0a]),
 *   truncate: true };
 * ```
 */
export type Op =
  /**
   * WRITE: `data` at `offset`; with `truncate` the file ends at
   * `offset + data.length` (a truncation is a write with no data).
   */
  | { type: "write"; path: string; offset: number; data: Uint8Array; truncate: boolean }
  /** CREATE: an empty file; EEXIST when the name exists. */
  | { type: "create"; path: string }
  /** MKDIR */
  | { type: "mkdir"; path: string }
  /** DELETE: a file or an empty directory. */
  | { type: "delete"; path: string }
  /** RENAME `path` to `to`, replacing `to`. */
  | { type: "rename"; path: string; to: string }
  /** MTIME: sets the mtime (seconds); the writer rules of locks apply. */
  | { type: "mtime"; path: string; mtime: number }
  /**
   * utimens with mtime 0 on a lock directory (storage spec 6.3): removes an
   * expired lock, else fails like MTIME 0. In cluster mode an UNLOCK_REQUEST
   * then an MTIME message.
   */
  | { type: "unlockRequest"; path: string };

/** A truncation of `path` to `length` bytes (the wire's WRITE with no data). */
export function truncateOp(path: string, length: number): Op {
  return { type: "write", path, offset: length, data: new Uint8Array(0), truncate: true };
}

/**
 * The commit port: how the filesystem layer hands changes over. In local mode
 * the committer is the database (synchronous: `done` runs before `commit`
 * returns); in cluster mode it is dcdb (`done` runs when our own message was
 * delivered and applied). The filesystem layer never imports the store.
 */
import type { Op } from "../memdb/op.ts";

/** Applies operations and reports the result. */
export interface Committer {
  /**
   * Applies `ops` as one change (several ops only for the writes of one file
   * handle) and calls `done` once with 0 or an errno. `origin` comes back with
   * the applied-change notification of this change.
   */
  commit(ops: readonly Op[], done: (errno: number) => void, origin?: unknown): void;
}

/**
 * The commit port of cluster mode (cluster spec 5.4): each `Op` becomes its database-group
 * message(s) ({@linkcode senderMessages}), sent through the group driver; the caller learns
 * the errno once its own message is delivered and applied here (4.4):
 *
 * | what happened | errno |
 * | --- | --- |
 * | not quorate when committing | EACCES (nothing is sent) |
 * | delivered and applied with result r | r < 0: -r; else 0 |
 * | delivered but rejected (the slot receives -1, Quirk C12) | EPERM (= -(-1)) |
 * | the send failed, or the wait was aborted (rejoin, corosync lost) | EBUSY |
 *
 * Several ops (the writes of one file handle, in order) are sent back to back and answered
 * once the last one completes; the first error in op order wins.
 *
 * @example
 * ```ts
 * import { DcdbCommitter } from "./committer.ts";
 * declare const driver: import("../dfsm/driver.ts").GroupDriver;
 * declare const db: import("../store/database.ts").Database;
 * const committer = new DcdbCommitter(driver, db, { quorate: () => true });
 * committer.commit([{ type: "mkdir", path: "nodes/n4" }], (errno) => console.log(errno));
 * ```
 * @module
 */
import type { Committer } from "../fs/committer.ts";
import type { GroupDriver } from "../dfsm/driver.ts";
import type { SendOutcome } from "../dfsm/types.ts";
import type { Memdb } from "../memdb/memdb.ts";
import type { Op } from "../memdb/op.ts";
import { Errno } from "../util/errno.ts";
import { senderMessages } from "./apply.ts";

/** What the committer needs from the node besides the driver. */
export interface DcdbCommitterOptions {
  /** The process-wide quorum flag (spec 7): false → EACCES, nothing sent. */
  quorate(): boolean;
}

/** The errno a waiting sender's caller gets for an outcome (spec 5.4). */
export function outcomeErrno(o: SendOutcome): number {
  if (!o.processed) return Errno.EBUSY;
  return o.result < 0 ? -o.result : 0;
}

/** {@linkcode Committer} over the database group (see the module documentation). */
export class DcdbCommitter implements Committer {
  constructor(
    private readonly driver: Pick<GroupDriver, "send">,
    private readonly db: { readonly memdb: Memdb },
    private readonly opts: DcdbCommitterOptions,
  ) {}

  /**
   * Sends `ops` back to back and calls `done` once, when the last waiting message completed.
   * `origin` is ignored for now: the applied-change notification of a delivered message
   * carries no origin, so the FUSE handler invalidates fully for these changes.
   */
  commit(ops: readonly Op[], done: (errno: number) => void, _origin?: unknown): void {
    if (!this.opts.quorate()) {
      done(Errno.EACCES);
      return;
    }
    const results: number[] = new Array(ops.length).fill(0);
    let outstanding = 1; // released after the last send: completions may come synchronously
    let answered = false;
    const finish = () => {
      if (--outstanding > 0 || answered) return;
      answered = true;
      done(results.find((e) => e !== 0) ?? 0);
    };
    ops.forEach((op, i) => {
      for (const m of senderMessages(this.db.memdb, op)) {
        if (!m.wait) {
          this.driver.send(m.subtype, m.payload);
          continue;
        }
        outstanding++;
        this.driver.send(m.subtype, m.payload, (o) => {
          const e = outcomeErrno(o);
          if (results[i] === 0) results[i] = e;
          finish();
        }, -Errno.EBUSY);
      }
    });
    finish();
  }
}

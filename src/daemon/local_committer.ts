/**
 * The committer of local mode: applies operations to memdb and config.db at
 * once (writer 0, the daemon's clock) and answers before returning.
 */
import type { Committer } from "../fs/committer.ts";
import type { Op } from "../memdb/op.ts";
import type { Database } from "../store/database.ts";
import { logger } from "./log.ts";

/** Describes an op for debug lines, without its data. */
export function describeOp(op: Op): string {
  switch (op.type) {
    case "write":
      return `write ${op.path} ${op.offset}+${op.data.length}${op.truncate ? " truncate" : ""}`;
    case "rename":
      return `rename ${op.path} ${op.to}`;
    case "mtime":
      return `mtime ${op.path} ${op.mtime}`;
    default:
      return `${op.type} ${op.path}`;
  }
}

export class LocalCommitter implements Committer {
  constructor(
    private readonly db: Database,
    private readonly now: () => number,
  ) {}

  commit(ops: readonly Op[], done: (errno: number) => void, origin?: unknown): void {
    const t = this.now();
    const r = this.db.applyAll(ops, { writer: 0, mtime: t, now: t }, origin);
    logger.debug("database", () => `commit ${ops.map(describeOp).join(", ")}: errno ${r.errno}`);
    done(r.errno);
  }
}

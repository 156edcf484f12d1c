/**
 * Applying a delivered database-group NORMAL message (cluster spec 5.5) and
 * the unlock request / unlock (5.6), on every member, the sender included.
 * Changes go through `Database.apply` (memdb + config.db) with writer = the
 * sender's nodeid and mtime = the header time (MTIME: its offset field).
 *
 * @example
 * ```ts
 * import { applyMessage } from "./apply.ts";
 * // const out = applyMessage(db, env, ctx, { nodeid: 1, pid: 10701 }, 2, 1795561411, payload);
 * // out: { ret: "ok", result: 0 } | { ret: "reject" } | { ret: "error", result: -5 }
 * ```
 */
import type { Database } from "../store/database.ts";
import { entryChecksum } from "../memdb/checksum.ts";
import { EntryType } from "../memdb/entry.ts";
import {
  DcdbMsg,
  decodeFuseMessage,
  decodeUnlockMessage,
  encodeFuseMessage,
  encodeUnlockMessage,
  type FuseOp,
  type UnlockMessage,
} from "./codec.ts";
import type { DeliverResult, DfsmContext, MemberId } from "../dfsm/types.ts";
import { sameBytes } from "./sync.ts";
import type { Memdb } from "../memdb/memdb.ts";
import type { Op } from "../memdb/op.ts";

/** What applying needs from the DFSM context: the local clock, logging, sending. */
export type ApplyCtx = Pick<DfsmContext, "now" | "mcastNormal" | "log">;

/** What applying needs from the node: quorum, identity, membership, the host hook. */
export interface ApplyEnv {
  /** The process-wide quorum flag (spec 7). */
  quorate(): boolean;
  /** This process's CPG member (nodeid, pid). */
  self(): MemberId;
  /** Smallest nodeid of the group's current membership (0 when unknown). */
  lowestNodeid(): number;
  /**
   * The corosync.conf synchronisation of spec 8.4, run before the delivery
   * returns; `notify` is true when the message came from this process.
   */
  corosyncConfChanged?(notify: boolean): void;
}

/** The file whose change triggers the corosync.conf synchronisation. */
export const COROSYNC_CONF = "corosync.conf";

/** True when an applied op must run the corosync.conf synchronisation (5.5 step 5). */
export function touchesCorosyncConf(op: FuseOp): boolean {
  if (op.type === "write" || op.type === "create") return op.path === COROSYNC_CONF;
  return op.type === "rename" && op.to === COROSYNC_CONF;
}

/**
 * Applies one delivered NORMAL message (spec 5.5): unknown subtype, no
 * quorum or a malformed payload reject it (critical log, no result: the
 * waiting sender gets EPERM, Quirk C12); otherwise the result is the
 * storage result (bytes written for WRITE, 0 or -errno), 0 for the unlock
 * types. A set storage error flag afterwards turns the outcome into "error".
 */
export function applyMessage(
  db: Database,
  env: ApplyEnv,
  ctx: ApplyCtx,
  from: MemberId,
  subtype: number,
  time: number,
  payload: Uint8Array,
): DeliverResult {
  if (!Number.isInteger(subtype) || subtype < DcdbMsg.Write || subtype > DcdbMsg.Unlock) {
    ctx.log("crit", `received unknown message type (msg_type == ${subtype})`);
    return { ret: "reject" };
  }
  if (!env.quorate()) {
    ctx.log("crit", "received write while not quorate - trigger resync");
    return { ret: "reject" };
  }
  let result: number;
  if (subtype === DcdbMsg.UnlockRequest || subtype === DcdbMsg.Unlock) {
    const m = decodeUnlockMessage(payload);
    if (!m.ok) {
      ctx.log("crit", m.error);
      return { ret: "reject" };
    }
    applyUnlock(db, env, ctx, from, subtype, time, m.value, payload);
    result = 0;
  } else {
    const m = decodeFuseMessage(subtype, payload);
    if (!m.ok) {
      ctx.log("crit", m.error);
      return { ret: "reject" };
    }
    const op = m.value;
    const r = db.apply(op, { writer: from.nodeid, mtime: time, now: ctx.now });
    result = r.errno === 0 ? r.value : -r.errno;
    if (result >= 0 && touchesCorosyncConf(op) && env.corosyncConfChanged) {
      const self = env.self();
      env.corosyncConfChanged(from.nodeid === self.nodeid && from.pid === self.pid);
    }
  }
  if (db.memdb.errors) return { ret: "error", result };
  return { ret: "ok", result };
}

/** True when `path` names a lock for the unlock messages: `priv/lock/` plus something. */
function isUnlockPath(path: string): boolean {
  return path.startsWith("priv/lock/") && path.length > "priv/lock/".length;
}

/**
 * Spec 5.6: nothing unless `path` is an existing directory under
 * `priv/lock/` whose current single-entry checksum is the message's. UNLOCK
 * deletes it (writer = sender, mtime = header time) on every member;
 * UNLOCK_REQUEST makes only the member with the lowest nodeid judge expiry
 * on its own clock and lock table and, if expired and quorate, multicast
 * UNLOCK with the same payload.
 */
function applyUnlock(
  db: Database,
  env: ApplyEnv,
  ctx: ApplyCtx,
  from: MemberId,
  subtype: number,
  time: number,
  m: UnlockMessage,
  payload: Uint8Array,
): void {
  if (!isUnlockPath(m.path)) return;
  const e = db.memdb.lookup(m.path);
  if (!e || e.type !== EntryType.Dir || !sameBytes(entryChecksum(e), m.checksum)) return;
  if (subtype === DcdbMsg.Unlock) {
    db.apply({ type: "delete", path: m.path }, { writer: from.nodeid, mtime: time, now: ctx.now });
    return;
  }
  if (env.self().nodeid !== env.lowestNodeid()) return;
  if (db.memdb.lockExpired(m.path, ctx.now) && env.quorate()) {
    ctx.mcastNormal(DcdbMsg.Unlock, payload.slice());
  }
}

/** One NORMAL message to send; `wait`: the sender waits for its result. */
export interface SenderMessage {
  subtype: number;
  payload: Uint8Array;
  wait: boolean;
}

/**
 * The NORMAL messages of one operation on the sending side (spec 5.4): one
 * FUSE message; for an unlock request (utime 0 on an existing lock
 * directory) an UNLOCK_REQUEST with the entry's current checksum, sent
 * without waiting, then the MTIME 0 message. The quorum check (EACCES,
 * nothing sent) is the caller's.
 */
export function senderMessages(memdb: Memdb, op: Op): SenderMessage[] {
  if (op.type !== "unlockRequest") return [{ ...encodeFuseMessage(op), wait: true }];
  const out: SenderMessage[] = [];
  const e = memdb.lookup(op.path);
  if (e && e.type === EntryType.Dir && isUnlockPath(op.path)) {
    const payload = encodeUnlockMessage({ checksum: entryChecksum(e), path: op.path });
    out.push({ subtype: DcdbMsg.UnlockRequest, payload, wait: false });
  }
  out.push({ ...encodeFuseMessage({ type: "mtime", path: op.path, mtime: 0 }), wait: true });
  return out;
}

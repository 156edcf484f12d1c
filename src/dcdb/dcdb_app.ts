/**
 * The database group's application (cluster spec section 5) for the DFSM
 * core, over a `Database`: delivery of NORMAL messages (5.5-5.6), the STATE
 * (5.7), leader selection and the leader's updates (5.8-5.9), collecting
 * UPDATEs (5.10) and the commit (5.11). No I/O of its own: it multicasts
 * through the DFSM context, persists through the `Database`, and leaves the
 * host's corosync.conf to a callback.
 *
 * @example
 * ```ts
 * import { DcdbApp } from "./dcdb_app.ts";
 * // const app = new DcdbApp(db, {
 * //   quorate: () => quorum.quorate,
 * //   self: () => ({ nodeid: 1, pid: Deno.pid }),
 * //   corosyncConfChanged: (notify) => hostConf.schedule(notify),
 * // });
 * // const dfsm = new Dfsm(config, app);
 * ```
 */
import type { Database } from "../store/database.ts";
import type { Row } from "../memdb/load.ts";
import { encodeIndex } from "../memdb/checksum.ts";
import type { DeliverResult, DfsmApp, DfsmContext, MemberId } from "../dfsm/types.ts";
import { type ApplyEnv, applyMessage } from "./apply.ts";
import { decodeState, decodeUpdate, encodeUpdate } from "./codec.ts";
import {
  compareMembers,
  discardedPaths,
  memberName,
  type MemberState,
  selectLeader,
  updateInodes,
  updateRows,
} from "./sync.ts";

/** What the application needs from the node. */
export interface DcdbOptions {
  /** The process-wide quorum flag. */
  quorate(): boolean;
  /** This process's member (own nodeid from cpg_local_get, own pid). */
  self(): MemberId;
  /**
   * The corosync.conf synchronisation (spec 8.4), called after an applied
   * WRITE/CREATE of `corosync.conf` or RENAME onto it (notify = the message
   * is this process's own) and after every successful commit (notify off).
   */
  corosyncConfChanged?(notify: boolean): void;
  /**
   * Smallest nodeid of the group's current membership, if the caller keeps
   * it; otherwise the app tracks it from `onConfchg` (which must then run
   * before messages of the new membership are delivered).
   */
  lowestNodeid?(): number;
  /**
   * Failed commits in a row after which the storage error flag stays set
   * (Quirk C11: the original sets it at the first one). Default 3.
   */
  maxCommitFailures?: number;
}

/** The dcdb application of the DFSM core. */
export class DcdbApp implements DfsmApp {
  private lowest = 0;
  private leader?: MemberId;
  private leaderState?: Uint8Array;
  private updates: Row[] = [];
  private commitFailures = 0;
  private readonly env: ApplyEnv;

  constructor(readonly db: Database, private readonly opts: DcdbOptions) {
    this.env = {
      quorate: () => opts.quorate(),
      self: () => opts.self(),
      lowestNodeid: () => this.lowestNodeid,
      corosyncConfChanged: opts.corosyncConfChanged
        ? (notify) => opts.corosyncConfChanged!(notify)
        : undefined,
    };
  }

  /** Smallest nodeid of the membership (option, else the last `onConfchg`; 0 before it). */
  get lowestNodeid(): number {
    return this.opts.lowestNodeid ? this.opts.lowestNodeid() : this.lowest;
  }

  /** The leader of the current round, once the states are processed. */
  get currentLeader(): MemberId | undefined {
    return this.leader;
  }

  deliver(
    ctx: DfsmContext,
    from: MemberId,
    subtype: number,
    time: number,
    payload: Uint8Array,
  ): DeliverResult {
    return applyMessage(this.db, this.env, ctx, from, subtype, time, payload);
  }

  /** The memdb index, as it is when SYNC_START is delivered (spec 5.7). */
  getState(ctx: DfsmContext): Uint8Array | undefined {
    this.cleanup();
    try {
      return encodeIndex(this.db.memdb.index());
    } catch (e) {
      ctx.log("crit", `unable to build memdb index: ${(e as Error).message}`);
      return undefined;
    }
  }

  /**
   * Validates the states, selects the leader and the synced members (5.8)
   * and, on the leader, multicasts the updates and UPDATE_COMPLETE (5.9).
   */
  processStates(
    ctx: DfsmContext,
    states: { member: MemberId; state: Uint8Array }[],
  ): { synced: MemberId[] } | "error" {
    this.leader = undefined;
    this.leaderState = undefined;
    this.updates = [];
    if (states.length === 0) {
      ctx.log("crit", "no states to process");
      return "error";
    }
    const decoded: MemberState<MemberId>[] = [];
    for (const s of states) {
      const idx = decodeState(s.state);
      if (!idx.ok) {
        ctx.log("crit", idx.error);
        return "error";
      }
      decoded.push({ member: s.member, state: s.state, index: idx.value });
    }
    const { leader, synced } = selectLeader(decoded);
    ctx.log("notice", `leader is ${memberName(leader.member)}`);
    ctx.log("notice", `synced members: ${synced.map(memberName).join(", ")}`);
    this.leader = leader.member;
    this.leaderState = leader.state;
    if (compareMembers(leader.member, this.opts.self()) !== 0) return { synced };

    const others = decoded.filter((s) => s !== leader).map((s) => s.index);
    const rows = updateRows(this.db.memdb, updateInodes(leader.index, others));
    if (typeof rows === "string") {
      ctx.log("crit", rows);
      return "error";
    }
    ctx.log("notice", "start sending inode updates");
    for (const row of rows) ctx.mcastUpdate(encodeUpdate(row));
    ctx.log("notice", `sent all (${rows.length}) updates`);
    ctx.mcastUpdateComplete();
    return { synced };
  }

  /** Stores one UPDATE (5.10); nothing is applied before the commit. */
  processUpdate(ctx: DfsmContext, from: MemberId, payload: Uint8Array): boolean {
    const row = decodeUpdate(payload);
    if (!row.ok) {
      ctx.log("crit", row.error);
      return false;
    }
    if (this.leader && compareMembers(from, this.leader) !== 0) {
      ctx.log("crit", `received update from ${memberName(from)}, not from the leader (Quirk C23)`);
    }
    this.updates.push(row.value);
    return true;
  }

  /**
   * The whole-state replacement (5.11) through `Database.replaceState`. A
   * failure rolls back; the storage error flag it sets is taken back unless
   * it was set before or this is the `maxCommitFailures`-th failure in a
   * row (Quirk C11), so the member can LEAVE and retry.
   */
  commit(ctx: DfsmContext): boolean {
    ctx.log(
      "notice",
      `update complete - trying to commit (got ${this.updates.length} inode updates)`,
    );
    if (!this.leaderState) {
      ctx.log("crit", "commit without a leader index - internal error");
      return false;
    }
    this.logDiscarded(ctx, this.leaderState);
    const hadErrors = this.db.memdb.errors;
    const failure = this.db.replaceState(this.leaderState, this.updates, ctx.now);
    if (failure !== null) {
      this.commitFailures++;
      ctx.log(
        "crit",
        failure.includes("differs from leader")
          ? "new index does not match master index - internal error"
          : failure,
      );
      if (!hadErrors && this.commitFailures < (this.opts.maxCommitFailures ?? 3)) {
        this.db.memdb.errors = false;
      }
      return false;
    }
    this.commitFailures = 0;
    this.opts.corosyncConfChanged?.(false);
    return true;
  }

  /** Logs the local paths the commit removes or replaces (Quirk C1), at most 50 of each. */
  private logDiscarded(ctx: DfsmContext, leaderState: Uint8Array): void {
    const leader = decodeState(leaderState);
    if (!leader.ok) return;
    const { removed, replaced } = discardedPaths(this.db.memdb, leader.value);
    for (const [what, paths] of [["removes", removed], ["replaces", replaced]] as const) {
      for (const p of paths.slice(0, 50)) ctx.log("notice", `resync ${what} local '${p}'`);
      if (paths.length > 50) {
        ctx.log("notice", `resync ${what} ${paths.length - 50} more local entries`);
      }
    }
  }

  /** Drops the round's data: leader, leader index, collected updates. */
  cleanup(): void {
    this.leader = undefined;
    this.leaderState = undefined;
    this.updates = [];
  }

  /** Tree checksum for verification (storage spec 3.1). */
  checksum(): Uint8Array | undefined {
    return this.db.memdb.treeChecksum();
  }

  /** Keeps the lowest nodeid of the membership (the unlock-request judge, 5.6). */
  onConfchg(_ctx: DfsmContext, members: MemberId[]): void {
    this.lowest = members.length ? Math.min(...members.map((m) => m.nodeid)) : 0;
  }
}

/**
 * Types of the generic DFSM core (cluster spec section 4 and 10.2): the application interface
 * both groups implement (dcdb, kvstore), the events fed to {@linkcode Dfsm.step} and the effects
 * it returns.
 *
 * @example
 * ```ts
 * import type { DfsmEvent } from "./types.ts";
 * const ev: DfsmEvent = { type: "send", now: 1795561411, subtype: 2, payload: new Uint8Array(), ticket: 7, preset: -16 };
 * ```
 * @module
 */

/** A CPG group member: the pair (nodeid, pid) (spec 2.2). */
export interface MemberId {
  nodeid: number;
  pid: number;
}

/** ok: `result` goes to a waiting sender; reject: the group goes to LEAVE and the sender gets EPERM (its slot gets -1); error: ERROR mode (storage failure). */
export interface DeliverResult {
  ret: "ok" | "reject" | "error";
  result?: number;
}

/** Given to application calls; multicasts appear in the effect stream at that point. */
export interface DfsmContext {
  readonly now: number; // wall clock seconds of the current event
  mcastNormal(subtype: number, payload: Uint8Array): void; // no result wanted (e.g. UNLOCK during delivery)
  mcastUpdate(payload: Uint8Array): void;
  mcastUpdateComplete(): void;
  log(level: LogLevel, text: string): void;
}

/** The application of one group (dcdb: spec 5, kvstore: spec 6). */
export interface DfsmApp {
  deliver(
    ctx: DfsmContext,
    from: MemberId,
    subtype: number,
    time: number,
    payload: Uint8Array,
  ): DeliverResult;
  getState(ctx: DfsmContext): Uint8Array | undefined;
  /** All states in member-table order; returns the synced members (dcdb: the leader and those equal to it; kvstore: everyone), or "error". The leader multicasts its UPDATEs and UPDATE_COMPLETE before returning. */
  processStates(
    ctx: DfsmContext,
    states: { member: MemberId; state: Uint8Array }[],
  ): { synced: MemberId[] } | "error";
  processUpdate(ctx: DfsmContext, from: MemberId, payload: Uint8Array): boolean;
  commit(ctx: DfsmContext): boolean;
  cleanup(): void;
  checksum?(): Uint8Array | undefined;
  onConfchg?(ctx: DfsmContext, members: MemberId[]): void;
  onSynced?(ctx: DfsmContext): void;
}

/** Log levels (syslog names). */
export type LogLevel = "crit" | "err" | "warn" | "notice" | "info" | "debug";

/** Parameters of one group (spec 10.1). */
export interface DfsmConfig {
  /** CPG group name without the NUL (`pve_dcdb_v1`, `pve_kvstore_v1`); see `groupNameBytes`. */
  groupName: string;
  /** DFSM protocol version of the group: dcdb 1, kvstore 0. */
  protocolVersion: number;
  /** Log domain: `dcdb` or `status`. */
  domain: string;
  /**
   * Verification period in seconds (dcdb 3600); undefined: no verification (kvstore). The core
   * has no clock: the adapter feeds a `timer` event every period; the core only reads this to
   * decide whether VERIFY_REQUEST/VERIFY are handled at all (with `app.checksum`).
   */
  verifyPeriod?: number;
  /**
   * Quirk C4 switch (off by default, must stay off in clusters with C nodes): in SYNCED mode,
   * queue NORMAL messages of members whose `synced` flag is not set (during an UPDATE window)
   * until UPDATE_COMPLETE, as unsynced members do, so that every member applies the same order.
   */
  holdUnsyncedSenders?: boolean;
}

/** DFSM modes (spec 4.2); values never travel on the wire. */
export const Mode = {
  START: 0,
  START_SYNC: 1,
  SYNCED: 2,
  UPDATE: 3,
  LEAVE: 253,
  VERSION_ERROR: 254,
  ERROR: 255,
} as const;
export type Mode = typeof Mode[keyof typeof Mode];

/** Events (spec 10.2). Each carries `now`: wall clock seconds (header times, epochs). */
export type DfsmEvent =
  /** (Re)initialisation: the adapter created/reused the handle and joins right after (4.12). */
  | { type: "initialised"; now: number; nodeid: number; pid: number }
  /** A configuration change of the group, lists in corosync's order (4.3). */
  | { type: "confchg"; now: number; members: MemberId[]; left: MemberId[]; joined: MemberId[] }
  /** A delivered CPG message (own ones included), the whole payload (3.5). */
  | { type: "delivered"; now: number; from: MemberId; bytes: Uint8Array }
  /** The verification timer fired (4.11). */
  | { type: "timer"; now: number }
  /**
   * An application send (4.4). With `ticket` the caller waits: a `complete` effect with that
   * ticket follows exactly once; `preset` is the slot's initial result (dcdb: -EBUSY).
   */
  | {
    type: "send";
    now: number;
    subtype: number;
    payload: Uint8Array;
    ticket?: number;
    preset?: number;
  }
  /** The mcast effect `seq` finally failed (after the adapter's retries) with cs_error_t `error`. */
  | { type: "sendFailed"; now: number; seq: number; error: number }
  /** Optional bookkeeping: mcast effects up to `seq` were accepted by corosync (frees memory). */
  | { type: "sent"; now: number; seq: number }
  /** Corosync connection lost or shutdown (4.12). */
  | { type: "finalise"; now: number };

/** How a waiting sender ends (4.4, 5.4). */
export type SendOutcome =
  | { processed: true; result: number }
  | { processed: false; reason: "aborted" | "sendFailed" };

/** Effects, in the exact order the adapter must execute them (10.2). */
export type DfsmEffect =
  /** Multicast on this group's handle; `seq` numbers every mcast of this core from 1. */
  | { type: "mcast"; seq: number; bytes: Uint8Array }
  /** Resolve the waiting sender `ticket`. */
  | { type: "complete"; ticket: number; outcome: SendOutcome }
  /** Call `cpg_leave` (an error mode was entered while joined). */
  | { type: "leaveGroup" }
  /** The service is down (after the own leave): re-initialise in >= 6 s if restartable. */
  | { type: "serviceDown"; restartable: boolean }
  | { type: "log"; domain: string; level: LogLevel; text: string };

/** Corosync result codes used by the core (spec conventions). */
export const CS = {
  OK: 1,
  ERR_LIBRARY: 2,
  ERR_TRY_AGAIN: 6,
  ERR_BAD_HANDLE: 9,
  ERR_NOT_EXIST: 12,
  ERR_FAILED_OPERATION: 21,
} as const;

/**
 * The generic DFSM core (cluster spec section 4), sans I/O: one instance per CPG group,
 * parameterised by {@linkcode DfsmConfig} and a {@linkcode DfsmApp}. One door:
 * `step(event)` returns the effects of that event, in the order the adapter must execute them
 * (multicasts, completions of waiting senders, leave, service down, log lines). No clock, no
 * timers, no I/O: time comes in the events.
 *
 * @example
 * ```ts
 * import { Dfsm } from "./dfsm.ts";
 * declare const app: import("./types.ts").DfsmApp;
 * const core = new Dfsm({ groupName: "pve_dcdb_v1", protocolVersion: 1, domain: "dcdb", verifyPeriod: 3600 }, app);
 * core.step({ type: "initialised", now: 1795561396, nodeid: 1, pid: 10701 });
 * const effects = core.step({
 *   type: "confchg", now: 1795561396,
 *   members: [{ nodeid: 1, pid: 10701 }], left: [], joined: [{ nodeid: 1, pid: 10701 }],
 * });
 * // effects: log "members: 1/10701", log "all data is up to date"
 * ```
 * @module
 */
import {
  CHECKSUM_SIZE,
  decodeMessage,
  decodeVerifyPayload,
  decodeVerifyRequestPayload,
  type DfsmMessage,
  encodeNormal,
  encodeState,
  encodeVerifyPayload,
  encodeVerifyRequestPayload,
  type Epoch,
  epochEquals,
  formatEpoch,
  hex,
  isNormal,
  MsgType,
  type NormalMessage,
  type StateMessage,
} from "./codec.ts";
import { insertByCount, type Queued } from "./queue.ts";
import {
  CS,
  type DeliverResult,
  type DfsmApp,
  type DfsmConfig,
  type DfsmContext,
  type DfsmEffect,
  type DfsmEvent,
  type LogLevel,
  type MemberId,
  Mode,
} from "./types.ts";

/** One row of the member table (4.1). */
export interface MemberEntry {
  nodeid: number;
  pid: number;
  state: Uint8Array | undefined;
  synced: boolean;
}

/** What an mcast effect was, to apply the consequence of its failure (4.13). */
type Pending =
  | { kind: "normal"; count: number }
  | { kind: "resend" }
  | {
    kind: "syncStart" | "state" | "update" | "updateComplete" | "verifyRequest" | "verify";
  };

interface Slot {
  ticket: number;
  result: number;
  processed: boolean;
}

const ZERO_EPOCH: Epoch = { counter: 0, time: 0, nodeid: 0, pid: 0 };
/** Outstanding mcasts remembered for `sendFailed` when the adapter never reports `sent`. */
const MAX_PENDING = 65536;

/** `n/p` as the daemon writes members. */
export function formatMember(m: MemberId): string {
  return `${m.nodeid}/${m.pid}`;
}

function isErrorMode(m: number): boolean {
  return m >= 128;
}

function sameMember(a: MemberId, b: MemberId): boolean {
  return a.nodeid === b.nodeid && a.pid === b.pid;
}

function compareMembers(a: MemberId, b: MemberId): number {
  return a.nodeid - b.nodeid || a.pid - b.pid;
}

function u64Le(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i] ?? 0);
  return v;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The DFSM state machine of one group. Feed events with {@linkcode Dfsm.step}; execute the
 * returned effects in order. Never throws (an application exception is logged and treated as
 * that call's failure).
 */
export class Dfsm {
  readonly config: DfsmConfig;
  readonly app: DfsmApp;

  #nodeid = 0;
  #pid = 0;
  #initialised = false;
  #joined = false;
  #weAreMember = false;
  #downReported = false;
  #mode: Mode = Mode.START;
  #members: MemberEntry[] | undefined;
  #lowest = 0;
  #epochCounter = 0;
  #syncEpoch: Epoch = ZERO_EPOCH;
  #msgQueue: Queued[] = [];
  #syncQueue: Queued[] = [];
  #msgcount = 0;
  #msgcountRcvd = 0;
  #slots = new Map<number, Slot>();
  #csum: Uint8Array | undefined;
  #csumId = 0n;
  #csumEpoch: Epoch = ZERO_EPOCH;
  #csumCounter = 0n;
  #seq = 0;
  #pending = new Map<number, Pending>();
  #out: DfsmEffect[] = [];
  #now = 0;
  #ctx: DfsmContext;

  constructor(config: DfsmConfig, app: DfsmApp) {
    this.config = config;
    this.app = app;
    const now = () => this.#now;
    this.#ctx = {
      get now() {
        return now();
      },
      mcastNormal: (subtype, payload) => this.#sendNormal(subtype, payload, undefined, 0),
      mcastUpdate: (payload) => this.#mcastState(MsgType.UPDATE, payload, { kind: "update" }),
      mcastUpdateComplete: () =>
        this.#mcastState(MsgType.UPDATE_COMPLETE, new Uint8Array(), {
          kind: "updateComplete",
        }),
      log: (level, text) => this.#log(level, text),
    };
  }

  // --- observers (tests, adapter) ---

  get mode(): Mode {
    return this.#mode;
  }
  get nodeid(): number {
    return this.#nodeid;
  }
  get pid(): number {
    return this.#pid;
  }
  get joined(): boolean {
    return this.#joined;
  }
  get weAreMember(): boolean {
    return this.#weAreMember;
  }
  get lowestNodeid(): number {
    return this.#lowest;
  }
  get syncEpoch(): Epoch {
    return { ...this.#syncEpoch };
  }
  /** Last NORMAL count this process used (4.1 msgcount). */
  get msgcount(): number {
    return this.#msgcount;
  }
  get msgQueueLength(): number {
    return this.#msgQueue.length;
  }
  get syncQueueLength(): number {
    return this.#syncQueue.length;
  }
  /** A copy of the member table, sorted by (nodeid, pid). */
  get members(): MemberEntry[] {
    return (this.#members ?? []).map((m) => ({ ...m }));
  }
  /** Tickets of senders still waiting for their message. */
  get waiting(): number[] {
    return [...this.#slots.values()].map((s) => s.ticket);
  }

  /** The one door: handle `ev`, return its effects in execution order. */
  step(ev: DfsmEvent): DfsmEffect[] {
    this.#out = [];
    this.#now = ev.now;
    try {
      switch (ev.type) {
        case "initialised":
          this.#initialise(ev.nodeid, ev.pid);
          break;
        case "confchg":
          this.#confchg(ev.members, ev.joined);
          break;
        case "delivered":
          this.#delivered(ev.from, ev.bytes);
          break;
        case "timer":
          this.#timer();
          break;
        case "send":
          this.#sendNormal(ev.subtype, ev.payload, ev.ticket, ev.preset ?? 0);
          break;
        case "sendFailed":
          this.#sendFailed(ev.seq, ev.error);
          break;
        case "sent":
          for (const seq of this.#pending.keys()) {
            if (seq > ev.seq) break;
            this.#pending.delete(seq);
          }
          break;
        case "finalise":
          this.#finalise();
          break;
      }
    } catch (e) {
      // Defensive: nothing above is expected to throw (application calls are guarded).
      this.#log("crit", `internal error: ${(e as Error)?.message ?? e}`);
      this.#setMode(Mode.LEAVE);
    }
    if (isErrorMode(this.#mode)) {
      if (this.#joined) {
        // 4.10 step 1: after the dispatch the service leaves the still-joined group.
        this.#joined = false;
        this.#out.push({ type: "leaveGroup" });
      } else if (
        (ev.type === "confchg" || ev.type === "delivered") && this.#initialised &&
        !this.#downReported
      ) {
        // The next dispatch after the leave reports the service down.
        this.#downReported = true;
        this.#out.push({ type: "serviceDown", restartable: this.#mode === Mode.LEAVE });
      }
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  // --- helpers ---

  #log(level: LogLevel, text: string): void {
    this.#out.push({ type: "log", domain: this.config.domain, level, text });
  }

  #time(): number {
    return Math.floor(this.#now) >>> 0;
  }

  #isOwn(m: MemberId): boolean {
    return m.nodeid === this.#nodeid && m.pid === this.#pid;
  }

  #member(m: MemberId): MemberEntry | undefined {
    return this.#members?.find((e) => sameMember(e, m));
  }

  /** Mode change rule (4.2). */
  #setMode(m: Mode): void {
    const cur = this.#mode;
    if (m === cur) return;
    if (isErrorMode(m) && isErrorMode(cur) && m < cur) return;
    this.#mode = m;
    switch (m) {
      case Mode.START:
        this.#log("notice", "start cluster connection");
        break;
      case Mode.START_SYNC:
        this.#log("notice", "starting data syncronisation");
        break;
      case Mode.SYNCED:
        this.#log("notice", "all data is up to date");
        if (this.app.onSynced) {
          this.#guard("onSynced", () => this.app.onSynced!(this.#ctx), undefined);
        }
        break;
      case Mode.UPDATE:
        this.#log("notice", "waiting for updates from leader");
        break;
      case Mode.LEAVE:
        this.#log("crit", "leaving CPG group");
        break;
      case Mode.VERSION_ERROR:
        this.#log("crit", "detected newer protocol - please update this node");
        break;
      case Mode.ERROR:
        this.#log("crit", "serious internal error - stop cluster connection");
        break;
    }
  }

  #leave(text?: string): void {
    if (text !== undefined) this.#log("crit", text);
    this.#setMode(Mode.LEAVE);
  }

  /** Runs an application call; an exception is logged and yields `fallback`. */
  #guard<T>(what: string, f: () => T, fallback: T): T {
    try {
      return f();
    } catch (e) {
      this.#log("crit", `application ${what} failed: ${(e as Error)?.message ?? e}`);
      return fallback;
    }
  }

  #mcast(bytes: Uint8Array, p: Pending): void {
    const seq = ++this.#seq;
    this.#pending.set(seq, p);
    if (this.#pending.size > MAX_PENDING) {
      this.#pending.delete(this.#pending.keys().next().value!);
    }
    this.#out.push({ type: "mcast", seq, bytes });
  }

  #mcastState(type: number, payload: Uint8Array, p: Pending): void {
    this.#mcast(
      encodeState(type, this.config.protocolVersion, this.#time(), this.#syncEpoch, payload),
      p,
    );
  }

  // --- 4.4 sending ---

  #sendNormal(
    subtype: number,
    payload: Uint8Array,
    ticket: number | undefined,
    preset: number,
  ): void {
    const count = ++this.#msgcount;
    if (!this.#initialised || !this.#joined) {
      // No handle (BAD_HANDLE) or not joined any more (NOT_EXIST): fails at once (4.10 step 5).
      const err = this.#initialised ? CS.ERR_NOT_EXIST : CS.ERR_BAD_HANDLE;
      this.#log("crit", `cpg_send_message failed: ${err}`);
      if (ticket !== undefined) {
        this.#out.push({
          type: "complete",
          ticket,
          outcome: { processed: false, reason: "sendFailed" },
        });
      }
      return;
    }
    if (ticket !== undefined) this.#slots.set(count, { ticket, result: preset, processed: false });
    this.#mcast(
      encodeNormal(subtype & 0xffff, this.config.protocolVersion, this.#time(), count, payload),
      { kind: "normal", count },
    );
  }

  #sendFailed(seq: number, error: number): void {
    const p = this.#pending.get(seq);
    this.#pending.delete(seq);
    if (!p || p.kind === "normal" || error !== CS.ERR_TRY_AGAIN) {
      this.#log("crit", `cpg_send_message failed: ${error}`);
    }
    if (!p) return;
    switch (p.kind) {
      case "normal": {
        const slot = this.#slots.get(p.count);
        if (slot) {
          this.#slots.delete(p.count);
          this.#out.push({
            type: "complete",
            ticket: slot.ticket,
            outcome: { processed: false, reason: "sendFailed" },
          });
        }
        break;
      }
      case "resend":
        this.#leave("dfsm_resend_queue failed");
        break;
      case "syncStart":
        this.#leave("failed to send SYNC_START message");
        break;
      case "update":
        // Quirk C10, recommended handling: a lost UPDATE makes the round unusable -> LEAVE.
        this.#leave("failed to send UPDATE message");
        break;
      case "verifyRequest":
        this.#log("crit", "failed to send VERIFY_REQUEST message");
        break;
      case "state":
      case "updateComplete":
      case "verify":
        this.#leave();
        break;
    }
  }

  /** Records the result of an own message and releases waiters up to its count (4.4). */
  #recordLocalResult(count: number, result: number): void {
    const slot = this.#slots.get(count);
    if (slot) {
      slot.result = result;
      slot.processed = true;
    }
    this.#msgcountRcvd = count;
    this.#releaseWaiters();
  }

  #releaseWaiters(): void {
    const done = [...this.#slots.keys()].filter((c) => c <= this.#msgcountRcvd).sort((a, b) =>
      a - b
    );
    for (const c of done) {
      const s = this.#slots.get(c)!;
      this.#slots.delete(c);
      this.#out.push({
        type: "complete",
        ticket: s.ticket,
        outcome: s.processed
          ? { processed: true, result: s.result }
          : { processed: false, reason: "aborted" },
      });
    }
  }

  #abortWaiters(): void {
    this.#msgcountRcvd = this.#msgcount;
    this.#releaseWaiters();
  }

  // --- 4.12 ---

  #initialise(nodeid: number, pid: number): void {
    if (this.#mode === Mode.ERROR || this.#mode === Mode.VERSION_ERROR) {
      this.#log("crit", "can't initialize service");
      this.#out.push({ type: "serviceDown", restartable: false });
      return;
    }
    this.#nodeid = nodeid >>> 0;
    this.#pid = pid >>> 0;
    this.#msgQueue = [];
    this.#syncQueue = [];
    this.#abortWaiters();
    this.#members = undefined;
    this.#weAreMember = false;
    this.#initialised = true;
    this.#joined = true; // the adapter joins right after
    this.#downReported = false;
    this.#setMode(Mode.START);
  }

  #finalise(): void {
    this.#abortWaiters();
    if (this.#joined) this.#out.push({ type: "leaveGroup" });
    this.#joined = false;
    this.#weAreMember = false;
    this.#initialised = false;
  }

  // --- 4.3 configuration change ---

  #confchg(members: MemberId[], joined: MemberId[]): void {
    this.#weAreMember = false;
    this.#syncEpoch = {
      counter: (++this.#epochCounter) >>> 0,
      time: this.#time(),
      nodeid: this.#nodeid,
      pid: this.#pid,
    };
    this.#csumId = this.#csumCounter;
    this.#csumEpoch = ZERO_EPOCH;
    this.#syncQueue = [];
    if (isErrorMode(this.#mode)) return;

    this.#lowest = members.length ? Math.min(...members.map((m) => m.nodeid)) : 0;
    this.#weAreMember = members.some((m) => this.#isOwn(m));
    if (this.#weAreMember || this.#mode !== Mode.START) {
      this.#log("notice", `members: ${members.map(formatMember).join(", ")}`);
    }
    this.#members = members
      .map((m) => ({ nodeid: m.nodeid, pid: m.pid, state: undefined, synced: false }))
      .sort(compareMembers);
    this.#guard("cleanup", () => this.app.cleanup(), undefined);

    if (!this.#weAreMember) {
      if (this.#mode === Mode.START) return;
      this.#log("notice", `we (${this.#nodeid}/${this.#pid}) left the process group`);
      this.#setMode(Mode.LEAVE);
      return;
    }

    if (members.length > 1) {
      if (joined.length > 0 && this.#msgQueue.length > 0) {
        this.#log("notice", `queue not emtpy - resening ${this.#msgQueue.length} messages`);
        for (const q of this.#msgQueue) {
          if (this.#isOwn(q.from)) this.#mcast(q.bytes, { kind: "resend" });
        }
        this.#msgQueue = [];
      }
      this.#setMode(Mode.START_SYNC);
      if (this.#nodeid === this.#lowest) {
        this.#mcastState(MsgType.SYNC_START, new Uint8Array(), { kind: "syncStart" });
      }
    } else {
      this.#setMode(Mode.SYNCED);
      const own = this.#member({ nodeid: this.#nodeid, pid: this.#pid });
      if (own) own.synced = true;
      if (!this.#deliverMsgQueue()) return;
    }
    if (this.app.onConfchg && !isErrorMode(this.#mode)) {
      const list = members.map((m) => ({ nodeid: m.nodeid, pid: m.pid }));
      this.#guard("onConfchg", () => this.app.onConfchg!(this.#ctx, list), undefined);
    }
  }

  // --- 3.5 receive validation ---

  #delivered(from: MemberId, bytes: Uint8Array): void {
    if (isErrorMode(this.#mode)) return;
    if (!this.#members) {
      this.#leave("no dfsm_sync_info - internal error");
      return;
    }
    const r = decodeMessage(bytes, this.config.protocolVersion);
    if (!r.ok) {
      const e = r.error;
      switch (e.kind) {
        case "short":
        case "shortNormal":
          this.#leave(`received short message (${e.length} bytes)`);
          break;
        case "shortState":
          this.#leave(`received short state message (${e.length} bytes)`);
          break;
        case "newerProtocol":
          this.#log("crit", `received message with protocol version ${e.version}`);
          // Quirk C20: say who sent it as well (separate line, the C text is kept as is).
          this.#log(
            "crit",
            `message with protocol version ${e.version} came from ${formatMember(from)}`,
          );
          this.#setMode(Mode.VERSION_ERROR);
          break;
        case "olderProtocol":
          this.#log("notice", `ignore message with wrong protocol version ${e.version}`);
          break;
      }
      return;
    }
    const msg = r.msg;
    if (isNormal(msg)) {
      this.#onNormal(from, msg, bytes);
      return;
    }
    if (msg.type !== MsgType.SYNC_START && !epochEquals(msg.epoch, this.#syncEpoch)) {
      this.#log(
        "debug",
        `ignore message (msg_type == ${msg.type}) with wrong epoch ${formatEpoch(msg.epoch)}`,
      );
      return;
    }
    this.#onState(from, msg, bytes.length);
  }

  // --- 4.5 NORMAL on delivery ---

  #onNormal(from: MemberId, msg: NormalMessage, bytes: Uint8Array): void {
    const m = this.#member(from);
    if (this.#mode === Mode.SYNCED && !(this.config.holdUnsyncedSenders && m && !m.synced)) {
      this.#deliverNormal(from, msg);
      return;
    }
    if (!m) {
      this.#leave("dfsm_node_info_lookup failed");
      return;
    }
    const copy = bytes.slice();
    const q: Queued = {
      from: { nodeid: from.nodeid, pid: from.pid },
      bytes: copy,
      msg: { ...msg, payload: copy.subarray(bytes.length - msg.payload.length) },
    };
    if (this.#mode === Mode.UPDATE && m.synced) this.#syncQueue.push(q);
    else insertByCount(this.#msgQueue, q);
  }

  /** Hands a NORMAL message to the application (SYNCED); false if the group left SYNCED. */
  #deliverNormal(from: MemberId, msg: NormalMessage): boolean {
    const r: DeliverResult = this.#guard(
      "deliver",
      () => this.app.deliver(this.#ctx, from, msg.subtype, msg.time, msg.payload),
      { ret: "reject" },
    );
    if (this.#isOwn(from)) {
      this.#recordLocalResult(msg.count, r.ret === "reject" ? -1 : (r.result ?? -1));
    }
    if (r.ret === "reject") {
      this.#setMode(Mode.LEAVE);
      return false;
    }
    if (r.ret === "error") {
      this.#setMode(Mode.ERROR);
      return false;
    }
    return this.#mode === Mode.SYNCED;
  }

  // --- 4.8 queues ---

  #deliverMsgQueue(): boolean {
    if (this.#msgQueue.length === 0) return true;
    this.#log("notice", `dfsm_deliver_queue: queue length ${this.#msgQueue.length}`);
    const queue = this.#msgQueue;
    const keep: Queued[] = [];
    let ok = true;
    let i = 0;
    for (; i < queue.length; i++) {
      const q = queue[i];
      const m = this.#member(q.from);
      if (!m) {
        this.#log("notice", `remove message from non-member ${formatMember(q.from)}`);
        continue;
      }
      if (this.#mode === Mode.SYNCED) {
        if (!m.synced) {
          keep.push(q);
        } else if (!this.#deliverNormal(q.from, q.msg)) {
          ok = false;
          i++;
          break;
        }
      } else if (this.#mode === Mode.UPDATE) {
        if (m.synced) this.#syncQueue.push(q);
        else keep.push(q);
      } else {
        ok = false;
        break;
      }
    }
    this.#msgQueue = keep.concat(queue.slice(i));
    return ok;
  }

  #deliverSyncQueue(): boolean {
    if (this.#syncQueue.length === 0) return true;
    this.#log("notice", `dfsm_deliver_sync_queue: queue length ${this.#syncQueue.length}`);
    const queue = this.#syncQueue;
    this.#syncQueue = [];
    for (const q of queue) {
      if (this.#mode !== Mode.SYNCED || !this.#deliverNormal(q.from, q.msg)) return false;
    }
    return true;
  }

  #discardSyncData(): void {
    for (const m of this.#members ?? []) m.state = undefined;
    this.#guard("cleanup", () => this.app.cleanup(), undefined);
  }

  // --- 4.6 state messages by mode ---

  #unknownType(msg: DfsmMessage, length: number): void {
    this.#leave(`received unknown state message type (type = ${msg.type}, ${length} bytes)`);
  }

  #onState(from: MemberId, msg: StateMessage, length: number): void {
    switch (this.#mode) {
      case Mode.START:
        this.#leave(`internal error - unknown mode ${this.#mode}`);
        return;
      case Mode.START_SYNC:
        if (msg.type === MsgType.SYNC_START) this.#syncStart(from, msg);
        else if (msg.type === MsgType.STATE) this.#collectState(from, msg);
        else if (msg.type === MsgType.VERIFY_REQUEST || msg.type === MsgType.VERIFY) return;
        else this.#unknownType(msg, length);
        return;
      case Mode.SYNCED:
        if (msg.type === MsgType.UPDATE_COMPLETE) {
          for (const m of this.#members!) m.synced = true;
          this.#deliverMsgQueue();
        } else if (msg.type === MsgType.VERIFY_REQUEST) this.#verifyRequest(from, msg);
        else if (msg.type === MsgType.VERIFY) this.#verify(msg);
        return;
      case Mode.UPDATE:
        if (msg.type === MsgType.UPDATE) {
          const ok = this.#guard(
            "processUpdate",
            () => this.app.processUpdate(this.#ctx, from, msg.payload),
            false,
          );
          if (!ok) this.#leave();
        } else if (msg.type === MsgType.UPDATE_COMPLETE) {
          this.#updateComplete();
        } else if (msg.type === MsgType.VERIFY_REQUEST || msg.type === MsgType.VERIFY) return;
        else this.#unknownType(msg, length);
        return;
    }
  }

  // --- 4.7 the sync round ---

  #syncStart(from: MemberId, msg: StateMessage): void {
    if (from.nodeid !== this.#lowest) {
      // Quirk C6: logged as ignored, processed anyway.
      this.#log("crit", `ignore sync request from wrong member ${formatMember(from)}`);
    }
    this.#log("notice", `received sync request (epoch ${formatEpoch(msg.epoch)})`);
    this.#syncEpoch = { ...msg.epoch };
    this.#discardSyncData();
    const state = this.#guard("getState", () => this.app.getState(this.#ctx), undefined);
    if (!state || state.length === 0) {
      this.#leave("dfsm_get_state_fn failed");
      return;
    }
    // Snapshot now (10.3 invariant 2): encodeState copies the bytes.
    this.#mcastState(MsgType.STATE, state, { kind: "state" });
  }

  #collectState(from: MemberId, msg: StateMessage): void {
    const m = this.#member(from);
    if (!m) {
      this.#leave(`received state for non-member ${formatMember(from)}`);
      return;
    }
    if (m.state) {
      this.#leave(`received duplicate state for member ${formatMember(from)}`);
      return;
    }
    m.state = msg.payload.slice();
    const members = this.#members!;
    if (members.some((e) => !e.state)) return;
    this.#log("notice", "received all states");
    const states = members.map((e) => ({
      member: { nodeid: e.nodeid, pid: e.pid },
      state: e.state!,
    }));
    const r = this.#guard(
      "processStates",
      () => this.app.processStates(this.#ctx, states),
      "error" as const,
    );
    if (r === "error") {
      this.#leave();
      return;
    }
    if (this.#mode !== Mode.START_SYNC) return;
    for (const id of r.synced) {
      const e = this.#member(id);
      if (e) e.synced = true;
    }
    const own = this.#member({ nodeid: this.#nodeid, pid: this.#pid });
    if (own?.synced) {
      this.#setMode(Mode.SYNCED);
      this.#discardSyncData();
      this.#deliverMsgQueue();
    } else {
      this.#setMode(Mode.UPDATE);
      this.#deliverMsgQueue();
    }
  }

  #updateComplete(): void {
    const ok = this.#guard("commit", () => this.app.commit(this.#ctx), false);
    if (!ok) {
      this.#leave();
      return;
    }
    for (const m of this.#members!) m.synced = true;
    this.#setMode(Mode.SYNCED);
    if (this.#deliverSyncQueue()) this.#deliverMsgQueue();
    this.#discardSyncData();
  }

  // --- 4.11 verification ---

  #verifies(): boolean {
    return this.config.verifyPeriod !== undefined && this.app.checksum !== undefined;
  }

  #timer(): void {
    if (!this.#verifies()) return;
    if (this.#lowest === 0 || this.#nodeid !== this.#lowest || this.#mode !== Mode.SYNCED) return;
    if (this.#csumCounter !== this.#csumId) {
      this.#log("notice", `delay verify request ${hex(this.#csumCounter + 1n, 16)}`);
      return;
    }
    this.#csumCounter += 1n;
    this.#mcastState(MsgType.VERIFY_REQUEST, encodeVerifyRequestPayload(this.#csumCounter), {
      kind: "verifyRequest",
    });
  }

  #verifyRequest(from: MemberId, msg: StateMessage): void {
    if (!this.#verifies()) return;
    const id = decodeVerifyRequestPayload(msg.payload);
    if (id === undefined) {
      this.#leave(
        `cpg received verify request with wrong length (${msg.payload.length} bytes) form node ${
          formatMember(from)
        }`,
      );
      return;
    }
    const csum = this.#guard("checksum", () => this.app.checksum!(), undefined);
    if (!csum || csum.length < CHECKSUM_SIZE) {
      this.#leave("unable to compute data checksum");
      return;
    }
    this.#csum = csum.slice(0, CHECKSUM_SIZE);
    this.#csumEpoch = { ...msg.epoch };
    this.#csumId = id;
    if (this.#isOwn(from)) {
      this.#mcastState(MsgType.VERIFY, encodeVerifyPayload(id, this.#csum), { kind: "verify" });
    }
  }

  #verify(msg: StateMessage): void {
    if (!this.#verifies()) return;
    const v = decodeVerifyPayload(msg.payload);
    if (!v) {
      this.#leave(
        `cpg received verify message with wrong length (${msg.payload.length} bytes)`,
      );
      return;
    }
    if (this.#csum && v.csumId === this.#csumId && epochEquals(msg.epoch, this.#csumEpoch)) {
      if (!bytesEqual(v.checksum, this.#csum)) {
        this.#leave(
          `wrong checksum ${hex(u64Le(v.checksum), 16)} != ${
            hex(u64Le(this.#csum), 16)
          } - restarting`,
        );
      } else {
        this.#log("notice", "data verification successful");
      }
    } else {
      this.#log("notice", "skip verification - no checksum saved");
    }
  }
}

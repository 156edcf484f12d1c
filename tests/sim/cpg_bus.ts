/**
 * A simulated corosync CPG bus: seeded, deterministic, no wall clock and no timers of its own
 * (cluster spec 2.2, 2.6, 2.7, 10.5). One {@linkcode CpgBus} holds the nodes of a cluster, the
 * network (which nodes can talk: partitions), the corosync instance of every node (up or down),
 * the processes on each node and their CPG connections ({@linkcode CpgHandle}, one per
 * `cpg_initialize`, joined to at most one group, as libcpg's).
 *
 * Nothing happens behind the caller's back: calls (`join`, `leave`, `mcast`, `finalize`) only
 * queue work; {@linkcode CpgBus.step} performs ONE action chosen by the seeded PRNG among
 * everything that could happen next (corosync ordering a node's next queued request in its ring,
 * or one connection dispatching its next event into its callbacks), and advances the virtual
 * clock {@linkcode CpgBus.now} by one millisecond. {@linkcode CpgBus.runUntilQuiet} steps until
 * nothing is left. Network and corosync faults ({@linkcode CpgBus.partition},
 * {@linkcode CpgBus.heal}, {@linkcode CpgBus.stopCorosync}, {@linkcode CpgBus.crashNode}, ...)
 * take effect at once.
 *
 * Guarantees (what corosync gives `CPG_TYPE_AGREED`, spec 2.2):
 * - total order per group: every member delivers the group's messages in one order; each ring
 *   (a set of connected nodes whose corosync runs) has its own order;
 * - self delivery and per-sender FIFO;
 * - virtual synchrony: a confchg is queued at every member of the configuration at the same
 *   position of the stream; a message is delivered only to the members of the configuration it
 *   is ordered in, and its sender is one of them;
 * - a join confchg lists the joiner in `members` and `joined` (reason JOIN) and reaches the
 *   joiner before any message; a leave confchg reaches the leaver too (in `left`, reason LEAVE,
 *   absent from `members`); a process that dies or finalizes while joined leaves with PROCDOWN;
 * - nodes lost by a partition (or by corosync stopping) are reported to the survivors in ONE
 *   confchg per group, all departed processes in `left` with reason NODEDOWN;
 * - a merge reports every returning process in its own confchg (reason NODEUP), one after the
 *   other, at each side of the merge;
 * - `mcast` from a handle that is not joined (never joined, leave requested or done) returns
 *   `not_exist` (or, with option `unjoinedMcast: "drop"`, `ok` and nothing is sent: what
 *   corosync 2/3 really does for messages that need no fragmentation); `join` on a joined (or
 *   joining) handle returns `exist`.
 *
 * Ordering choices (corosync's, where it has one):
 * - member, left and joined lists are sorted by (nodeid, pid) ascending: corosync's cpg service
 *   keeps its process list in that order (it inserts every join sorted);
 * - a merge reports the returning processes in (nodeid, pid) order;
 * - messages in flight at a membership change (queued at a node, not yet ordered) are delivered
 *   in the configuration they were sent in, before the confchg, to the members that survive it:
 *   a ring that changes first orders everything its surviving nodes had queued; of the requests
 *   queued by a node that is now elsewhere (other partition, corosync dead), a random prefix of
 *   its messages (the ones that "made it to the wire") is delivered to the survivors too, or not
 *   at all (option `departedDelivery`). A sender's messages are never delivered in a later
 *   configuration.
 * - `mcast` checks joined-ness before flow control: a non-member always gets `not_exist`,
 *   never `try_again`.
 *
 * @example
 * ```ts
 * import { CpgBus } from "./cpg_bus.ts";
 * const bus = new CpgBus({ seed: 1 });
 * bus.addNodes(2);
 * const p = bus.spawn(1);
 * const h = p.cpgInitialize({
 *   onConfchg: (c) => console.log(c.members),
 *   onDeliver: (m) => console.log(m.nodeid, m.bytes),
 * });
 * if (typeof h === "string") throw new Error(h);
 * h.join("pve_dcdb_v1\0");
 * h.mcast(new Uint8Array([1]));
 * bus.runUntilQuiet();
 * ```
 * @module
 */

import { prng } from "../unit/prng.ts";

/** Reasons in confchg lists (corosync `cpg_reason`; member entries carry 0). */
export const CpgReason = {
  JOIN: 1,
  LEAVE: 2,
  NODEDOWN: 3,
  NODEUP: 4,
  PROCDOWN: 5,
} as const;
export type CpgReason = typeof CpgReason[keyof typeof CpgReason];

/**
 * Results of the simulated library calls, named after `cs_error_t`: ok (CS_OK), try_again
 * (flow control), not_exist (not joined), exist (already joined), busy (join while the leave is
 * pending, leave while the join is pending), library (the corosync connection is lost: the caller
 * must finalize and initialise again), bad_handle (the handle was finalized).
 */
export type CsResult =
  | "ok"
  | "try_again"
  | "not_exist"
  | "exist"
  | "busy"
  | "library"
  | "bad_handle";

/** The `cs_error_t` number of each {@linkcode CsResult} (CS_OK = 1, CS_ERR_TRY_AGAIN = 6, ...). */
export const CS_ERROR: Readonly<Record<CsResult, number>> = {
  ok: 1,
  library: 2,
  try_again: 6,
  bad_handle: 9,
  busy: 10,
  not_exist: 12,
  exist: 14,
};

/** One entry of a confchg list: `struct cpg_address`. Member entries have reason 0. */
export interface CpgAddress {
  nodeid: number;
  pid: number;
  reason: number;
}

/** A configuration change of one group, as the confchg callback receives it. */
export interface CpgConfchg {
  /** The group name bytes (as given to `join`). */
  group: Uint8Array;
  /** All members after the change, sorted by (nodeid, pid). */
  members: CpgAddress[];
  left: CpgAddress[];
  joined: CpgAddress[];
  /**
   * Simulator-only: one number per confchg instance, the same at every process that receives
   * this confchg (for invariant checks; corosync has no such thing).
   */
  viewId: number;
  /** Virtual time (ms) when the confchg was ordered. */
  time: number;
}

/** A delivered message (deliver callback): sender and payload. */
export interface CpgMessage {
  group: Uint8Array;
  nodeid: number;
  pid: number;
  bytes: Uint8Array;
  /** Virtual time (ms) when the message was ordered. */
  time: number;
}

/** Callbacks of one CPG handle; they run inside {@linkcode CpgBus.step} (dispatch). */
export interface CpgCallbacks {
  onConfchg?(ev: CpgConfchg, handle: CpgHandle): void;
  onDeliver?(ev: CpgMessage, handle: CpgHandle): void;
  /**
   * The connection to corosync is gone (corosync died on this node): what `cpg_dispatch`
   * returning CS_ERR_LIBRARY means. Every later call on the handle returns `library`; the
   * process must finalize it and initialise a new one once corosync is back.
   */
  onTransportLost?(handle: CpgHandle): void;
}

/** Options of a {@linkcode CpgBus}. */
export interface CpgBusOptions {
  /** Seed of the PRNG that decides every choice. */
  seed: number;
  /** Probability that an otherwise accepted `mcast` returns `try_again` (default 0). */
  tryAgainRate?: number;
  /**
   * What survivors get of the requests queued by a node that left their ring (partition,
   * corosync death) but not yet ordered: "random" (default) a random prefix of its messages,
   * "all" or "none".
   */
  departedDelivery?: "random" | "all" | "none";
  /**
   * What `mcast` on a handle that is not joined (never joined, leave requested or done) does:
   * "not_exist" (default, cluster spec 2.2 item 7) returns `not_exist`; "drop" returns `ok` and
   * the message vanishes, which is what corosync 2/3 does for a message that fits one IPC
   * buffer (libcpg sends it with `qb_ipcc_sendv` and reads no reply; the server only logs
   * `can't mcast to group`); only fragmented (large) messages get CS_ERR_NOT_EXIST back.
   */
  unjoinedMcast?: "not_exist" | "drop";
  /** Receives one line per bus action (for debugging a seed). */
  trace?: (line: string) => void;
}

/** A ring as seen by one node: an id (increases with every new ring) and its nodes, sorted. */
export interface RingInfo {
  id: number;
  nodes: number[];
}

const enc = new TextEncoder();

function nameBytes(name: string | Uint8Array): Uint8Array {
  return typeof name === "string" ? enc.encode(name) : name.slice();
}

function nameKey(name: Uint8Array): string {
  return Array.from(name, (b) => b.toString(16).padStart(2, "0")).join("");
}

function cmpHandle(a: { nodeid: number; pid: number }, b: { nodeid: number; pid: number }) {
  return a.nodeid - b.nodeid || a.pid - b.pid;
}

/**
 * A connection of a process to a corosync service: an inbox of events that
 * {@linkcode CpgBus.step} (or {@linkcode SimConnection.dispatchOne}) runs one at a time. Base of
 * {@linkcode CpgHandle} and of the quorum handle (quorum.ts).
 */
export class SimConnection {
  /** Events queued for dispatch, oldest first. */
  protected inbox: (() => void)[] = [];
  /** The connection to corosync was lost (corosync died). */
  lost = false;
  /** Finalized by the process, or the process died: no more events. */
  closed = false;
  /**
   * While true, {@linkcode CpgBus.step} does not dispatch this connection (its events wait; the
   * harness may still call {@linkcode SimConnection.dispatchOne}). Models a process that is busy
   * or blocked, e.g. in C's TRY_AGAIN retry loop (spec 2.6) with `bus.schedule` for the retries.
   */
  paused = false;

  constructor(readonly bus: CpgBus, readonly process: SimProcess) {
    bus.registerConnection(this);
    process.connections.add(this);
  }

  /** Own node id (`cpg_local_get`). */
  get nodeid(): number {
    return this.process.nodeid;
  }

  /** Own pid. */
  get pid(): number {
    return this.process.pid;
  }

  /** Number of events waiting for dispatch. */
  pending(): number {
    return this.inbox.length;
  }

  /** Dispatch one event (`CS_DISPATCH_ONE`); false when there was none. */
  dispatchOne(): boolean {
    const ev = this.inbox.shift();
    if (!ev) return false;
    ev();
    return true;
  }

  /** @internal queue an event (dropped when the connection is closed or lost). */
  enqueue(ev: () => void): void {
    if (!this.closed && !this.lost) this.inbox.push(ev);
  }

  /** @internal corosync died: drop the queued events, queue the transport-lost notice. */
  loseTransport(): void {
    if (this.closed || this.lost) return;
    this.lost = true;
    this.inbox = [];
    this.inbox.push(() => this.onLost());
  }

  /** @internal the process died or finalized: nothing more is dispatched. */
  close(): void {
    this.closed = true;
    this.inbox = [];
    this.bus.unregisterConnection(this);
  }

  /** Called (at dispatch) when the transport is lost. */
  protected onLost(): void {}

  /** The result every call gives on a closed or lost connection, else undefined. */
  protected precheck(): CsResult | undefined {
    if (this.closed) return "bad_handle";
    this.bus.assertAlive(this.process);
    if (this.lost) return "library";
    return undefined;
  }
}

type HandleState = "unjoined" | "joining" | "joined" | "leaving";

/**
 * A CPG connection (`cpg_handle_t`) of a simulated process, from
 * {@linkcode SimProcess.cpgInitialize}. Methods return results like libcpg's.
 */
export class CpgHandle extends SimConnection {
  /** corosync's view of this handle: changes when corosync orders the join/leave. */
  state: HandleState = "unjoined";
  /** The group joined (or being joined / left); null when unjoined. */
  group: Uint8Array | null = null;
  /** @internal */
  key: string | null = null;

  constructor(bus: CpgBus, process: SimProcess, readonly callbacks: CpgCallbacks) {
    super(bus, process);
  }

  /**
   * `cpg_join`: ok (the join confchg follows), exist (joined or joining; or another handle of
   * the process is in the group), busy (leave pending), try_again (a finalized handle of the
   * process has not left yet; or injected), library, bad_handle.
   */
  join(name: string | Uint8Array): CsResult {
    const pre = this.precheck();
    if (pre) return pre;
    if (this.state === "joining" || this.state === "joined") return "exist";
    if (this.state === "leaving") return "busy";
    const group = nameBytes(name);
    const key = nameKey(group);
    for (const c of this.process.connections) {
      if (c !== this && c instanceof CpgHandle && c.key === key && c.state !== "unjoined") {
        return "exist"; // corosync refuses the same process twice in a group
      }
    }
    // the same process is still a member through a finalized handle whose PROCDOWN is not yet
    // ordered: corosync answers TRY_AGAIN (its "not yet delivered leave" check)
    if (this.bus.stillMember(this, key)) return "try_again";
    if (this.bus.takeInjected(this.nodeid, "join")) return "try_again";
    this.state = "joining";
    this.group = group;
    this.key = key;
    this.bus.request(this, { kind: "join", h: this, key, group });
    return "ok";
  }

  /** `cpg_leave`: ok (the leave confchg follows), not_exist, busy (join pending), library, bad_handle. */
  leave(): CsResult {
    const pre = this.precheck();
    if (pre) return pre;
    if (this.state === "unjoined" || this.state === "leaving") return "not_exist";
    if (this.state === "joining") return "busy";
    this.state = "leaving";
    this.bus.request(this, { kind: "leave", h: this, key: this.key!, group: this.group! });
    return "ok";
  }

  /**
   * `cpg_mcast_joined(CPG_TYPE_AGREED)`: ok (queued; delivered to every member, self included),
   * try_again (flow control: nothing sent), not_exist (not joined; see option `unjoinedMcast`),
   * library, bad_handle. The bytes are copied.
   */
  mcast(bytes: Uint8Array): CsResult {
    const pre = this.precheck();
    if (pre) return pre;
    if (this.state === "unjoined" || this.state === "leaving") {
      return this.bus.unjoinedMcastResult(this);
    }
    if (this.bus.takeInjected(this.nodeid, "mcast") || this.bus.randomTryAgain()) {
      return "try_again";
    }
    this.bus.request(this, {
      kind: "mcast",
      h: this,
      key: this.key!,
      group: this.group!,
      bytes: bytes.slice(),
    });
    return "ok";
  }

  /**
   * `cpg_finalize`: closes the connection; a joined handle leaves with reason PROCDOWN (as
   * corosync does when a connection closes). ok, or bad_handle when already finalized.
   */
  finalize(): CsResult {
    if (this.closed) return "bad_handle";
    this.bus.assertAlive(this.process);
    if (!this.lost && this.state !== "unjoined") {
      this.bus.request(this, { kind: "procdown", h: this, key: this.key!, group: this.group! });
    }
    this.close();
    return "ok";
  }

  /** `cpg_local_get`. */
  localGet(): number {
    return this.nodeid;
  }

  protected override onLost(): void {
    this.callbacks.onTransportLost?.(this);
  }

  override loseTransport(): void {
    super.loseTransport();
    this.state = "unjoined";
  }
}

/** A simulated process on a node: a pid and its corosync connections. */
export class SimProcess {
  alive = true;
  /** @internal */
  readonly connections = new Set<SimConnection>();

  constructor(readonly bus: CpgBus, readonly nodeid: number, readonly pid: number) {}

  /**
   * `cpg_initialize`: a new handle with these callbacks, or "library" when corosync is not
   * running on the node.
   */
  cpgInitialize(callbacks: CpgCallbacks): CpgHandle | "library" {
    this.bus.assertAlive(this);
    if (!this.bus.corosyncUp(this.nodeid)) return "library";
    return new CpgHandle(this.bus, this, callbacks);
  }

  /**
   * The process dies (kill -9): its connections close without a leave; the groups it was in
   * see it leave with reason PROCDOWN (if corosync runs on the node).
   */
  crash(): void {
    this.bus.killProcess(this);
  }
}

type Request =
  | { kind: "join" | "leave" | "procdown"; h: CpgHandle; key: string; group: Uint8Array }
  | { kind: "mcast"; h: CpgHandle; key: string; group: Uint8Array; bytes: Uint8Array };

interface View {
  group: Uint8Array;
  members: CpgHandle[]; // sorted by (nodeid, pid)
}

interface Ring {
  id: number;
  nodes: number[];
  views: Map<string, View>;
}

interface SimNode {
  id: number;
  up: boolean;
  ring: Ring | null;
  queue: Request[];
  nextPid: number;
  processes: SimProcess[];
  injected: { mcast: number; join: number };
}

/** See the module documentation. */
export class CpgBus {
  /** Virtual time in milliseconds; +1 per {@linkcode CpgBus.step}. */
  now = 0;
  /** The PRNG (seeded); harnesses may draw from it too to stay replayable. */
  readonly rng: ReturnType<typeof prng>;
  private readonly opts: Required<Omit<CpgBusOptions, "trace">> & Pick<CpgBusOptions, "trace">;
  private readonly nodes = new Map<number, SimNode>();
  private rings: Ring[] = [];
  private partitionSets: number[][] | null = null; // null: everyone connected
  private readonly connections = new Set<SimConnection>();
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private timerSeq = 0;
  private ringSeq = 0;
  private viewSeq = 0;
  private readonly ringListeners: ((changed: number[]) => void)[] = [];

  constructor(opts: CpgBusOptions) {
    this.opts = {
      tryAgainRate: 0,
      departedDelivery: "random",
      unjoinedMcast: "not_exist",
      ...opts,
    };
    this.rng = prng(opts.seed);
  }

  // ---- topology ---------------------------------------------------------------------------

  /** Add a node (corosync up, connected to every node of the current network); returns its id. */
  addNode(id?: number): number {
    const nodeid = id ?? (Math.max(0, ...this.nodes.keys()) + 1);
    if (this.nodes.has(nodeid)) throw new Error(`node ${nodeid} exists`);
    this.nodes.set(nodeid, {
      id: nodeid,
      up: true,
      ring: null,
      queue: [],
      nextPid: 1000 + nodeid * 100,
      processes: [],
      injected: { mcast: 0, join: 0 },
    });
    if (this.partitionSets) this.partitionSets.push([nodeid]);
    this.trace(`add-node ${nodeid}`);
    this.reconfigure();
    return nodeid;
  }

  /** Add `n` nodes; returns their ids. */
  addNodes(n: number): number[] {
    return Array.from({ length: n }, () => this.addNode());
  }

  /** Node ids, ascending. */
  nodeIds(): number[] {
    return [...this.nodes.keys()].sort((a, b) => a - b);
  }

  /**
   * Split the network: each set of node ids can talk only within itself; nodes not listed are
   * isolated. Rings re-form at once (NODEDOWN / NODEUP confchgs queued).
   */
  partition(sets: number[][]): void {
    const seen = new Set<number>();
    for (const s of sets) {
      for (const n of s) {
        if (!this.nodes.has(n)) throw new Error(`no node ${n}`);
        if (seen.has(n)) throw new Error(`node ${n} twice in the partition`);
        seen.add(n);
      }
    }
    this.partitionSets = sets.map((s) => [...s]);
    for (const n of this.nodes.keys()) if (!seen.has(n)) this.partitionSets.push([n]);
    this.trace(`partition ${this.partitionSets.map((s) => s.join(",")).join(" | ")}`);
    this.reconfigure();
  }

  /** Reconnect every node (merges all rings). */
  heal(): void {
    this.partitionSets = null;
    this.trace("heal");
    this.reconfigure();
  }

  /**
   * corosync stops on a node (dies or is stopped): every connection of the node's processes is
   * lost (`onTransportLost` at their next dispatch; calls return "library"); the other nodes see
   * the node's processes leave with NODEDOWN.
   */
  stopCorosync(nodeid: number): void {
    const node = this.node(nodeid);
    if (!node.up) return;
    this.trace(`stop-corosync ${nodeid}`);
    node.up = false;
    for (const p of node.processes) for (const c of p.connections) c.loseTransport();
    this.reconfigure();
  }

  /** corosync starts on a node: it joins the ring of the nodes it can reach. */
  startCorosync(nodeid: number): void {
    const node = this.node(nodeid);
    if (node.up) return;
    this.trace(`start-corosync ${nodeid}`);
    node.up = true;
    this.reconfigure();
  }

  /** The whole node fails: its processes die and its corosync stops (peers see NODEDOWN). */
  crashNode(nodeid: number): void {
    const node = this.node(nodeid);
    this.trace(`crash-node ${nodeid}`);
    for (const p of [...node.processes]) this.killProcess(p, false);
    this.stopCorosync(nodeid);
  }

  /** Whether corosync runs on the node. */
  corosyncUp(nodeid: number): boolean {
    return this.node(nodeid).up;
  }

  /** The ring of a node, or null when its corosync is down. */
  ringOf(nodeid: number): RingInfo | null {
    const r = this.node(nodeid).ring;
    return r ? { id: r.id, nodes: [...r.nodes] } : null;
  }

  /** Called after every membership change with the nodes whose ring changed (or went down). */
  onRingChange(fn: (changed: number[]) => void): void {
    this.ringListeners.push(fn);
  }

  // ---- processes ----------------------------------------------------------------------------

  /** Start a process on a node (a fresh pid); corosync need not be running. */
  spawn(nodeid: number): SimProcess {
    const node = this.node(nodeid);
    const p = new SimProcess(this, nodeid, node.nextPid++);
    node.processes.push(p);
    this.trace(`spawn ${nodeid}/${p.pid}`);
    return p;
  }

  /** Live processes of a node. */
  processesOf(nodeid: number): readonly SimProcess[] {
    return this.node(nodeid).processes;
  }

  /**
   * Script flow control: the next `count` calls of `op` on the node return `try_again`
   * (`cpg_mcast_joined` by default; "join" for `cpg_join`).
   */
  injectTryAgain(nodeid: number, count: number, op: "mcast" | "join" = "mcast"): void {
    this.node(nodeid).injected[op] += count;
  }

  // ---- the simulation -----------------------------------------------------------------------

  /**
   * Run `fn` when the virtual clock reaches `now + delayMs` (during a later step). For adapter
   * retries (TRY_AGAIN every 100 ms) and protocol timers. Returns a function that cancels it.
   */
  schedule(delayMs: number, fn: () => void): () => void {
    const t = { at: this.now + Math.max(0, delayMs), seq: this.timerSeq++, fn };
    this.timers.push(t);
    return () => {
      this.timers = this.timers.filter((x) => x !== t);
    };
  }

  /** Nothing queued anywhere: no request to order, no event to dispatch, no timer (events of
   * paused connections do not count). */
  isQuiet(): boolean {
    return this.candidates().length === 0 && this.timers.length === 0;
  }

  /**
   * Perform one action: a due timer, else one seeded choice among (a node's corosync orders
   * its oldest queued request) and (a connection dispatches its oldest event); when only timers
   * are left, jump the clock to the next one. Returns false when quiet.
   */
  step(): boolean {
    const due = this.nextTimer();
    if (due && due.at <= this.now) return this.fire(due);
    const cands = this.candidates();
    if (cands.length === 0) {
      if (!due) return false;
      this.now = due.at;
      return this.fire(due);
    }
    this.now++;
    const c = cands[this.rng.int(cands.length)];
    if (c instanceof SimConnection) {
      c.dispatchOne();
    } else {
      const req = c.queue.shift()!;
      this.order(c.ring!, req);
    }
    return true;
  }

  /**
   * Step until quiet; throws after `maxSteps` (a livelock, e.g. a timer that always re-arms).
   * Returns the number of steps.
   */
  runUntilQuiet(maxSteps = 1_000_000): number {
    let n = 0;
    while (this.step()) {
      if (++n >= maxSteps) throw new Error(`not quiet after ${maxSteps} steps`);
    }
    return n;
  }

  /** Run `n` steps at most; returns how many were done. */
  run(n: number): number {
    let i = 0;
    while (i < n && this.step()) i++;
    return i;
  }

  // ---- internals used by handles and quorum.ts -----------------------------------------------

  /** @internal */
  registerConnection(c: SimConnection): void {
    this.connections.add(c);
  }

  /** @internal */
  unregisterConnection(c: SimConnection): void {
    this.connections.delete(c);
    c.process.connections.delete(c);
  }

  /** @internal */
  assertAlive(p: SimProcess): void {
    if (!p.alive) throw new Error(`process ${p.nodeid}/${p.pid} is dead`);
  }

  /** @internal */
  takeInjected(nodeid: number, op: "mcast" | "join"): boolean {
    const inj = this.node(nodeid).injected;
    if (inj[op] > 0) {
      inj[op]--;
      return true;
    }
    return false;
  }

  /** @internal the result of `mcast` on a handle that is not joined (option `unjoinedMcast`). */
  unjoinedMcastResult(h: CpgHandle): CsResult {
    if (this.opts.unjoinedMcast === "not_exist") return "not_exist";
    this.trace(`drop mcast of unjoined ${h.nodeid}/${h.pid}`);
    return "ok";
  }

  /** @internal whether another handle of `h`'s process is a member of group `key` in its ring. */
  stillMember(h: CpgHandle, key: string): boolean {
    const view = this.node(h.nodeid).ring?.views.get(key);
    return !!view && view.members.some((m) => m !== h && m.process === h.process);
  }

  /** @internal */
  randomTryAgain(): boolean {
    return this.opts.tryAgainRate > 0 && this.rng.next() < this.opts.tryAgainRate;
  }

  /** @internal queue a request at the handle's node (corosync orders it later). */
  request(h: CpgHandle, req: Request): void {
    this.trace(`req ${h.nodeid}/${h.pid} ${req.kind}`);
    this.node(h.nodeid).queue.push(req);
  }

  /** @internal */
  killProcess(p: SimProcess, announce = true): void {
    if (!p.alive) return;
    this.trace(`crash ${p.nodeid}/${p.pid}`);
    const node = this.node(p.nodeid);
    for (const c of [...p.connections]) {
      if (announce && c instanceof CpgHandle && !c.lost && c.state !== "unjoined") {
        this.request(c, { kind: "procdown", h: c, key: c.key!, group: c.group! });
      }
      c.close();
    }
    p.alive = false;
    node.processes = node.processes.filter((x) => x !== p);
  }

  private node(id: number): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private trace(line: string): void {
    this.opts.trace?.(`[${this.now}] ${line}`);
  }

  private nextTimer() {
    let best: { at: number; seq: number; fn: () => void } | undefined;
    for (const t of this.timers) {
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }

  private fire(t: { at: number; seq: number; fn: () => void }): boolean {
    this.timers = this.timers.filter((x) => x !== t);
    t.fn();
    return true;
  }

  private candidates(): (SimNode | SimConnection)[] {
    const out: (SimNode | SimConnection)[] = [];
    for (const n of this.nodes.values()) if (n.up && n.queue.length > 0) out.push(n);
    for (const c of this.connections) if (c.pending() > 0 && !c.paused) out.push(c);
    return out;
  }

  /** corosync orders one request in a ring: the membership/delivery effect on its group. */
  private order(ring: Ring, req: Request, foreign = false): void {
    const view = ring.views.get(req.key);
    const h = req.h;
    // while a splitting ring flushes, its views still list the departed: they get nothing here
    const here = (hs: CpgHandle[]) => hs.filter((m) => ring.nodes.includes(m.nodeid));
    switch (req.kind) {
      case "mcast": {
        if (!view || !view.members.includes(h)) {
          throw new Error(`bus bug: mcast from non-member ${h.nodeid}/${h.pid}`);
        }
        this.trace(`order ${foreign ? "(departed) " : ""}mcast ${h.nodeid}/${h.pid}`);
        const ev: Omit<CpgMessage, "bytes"> = {
          group: req.group,
          nodeid: h.nodeid,
          pid: h.pid,
          time: this.now,
        };
        for (const m of here(view.members)) {
          m.enqueue(() => m.callbacks.onDeliver?.({ ...ev, bytes: req.bytes.slice() }, m));
        }
        return;
      }
      case "join": {
        const v = view ?? { group: req.group, members: [] };
        if (!view) ring.views.set(req.key, v);
        if (v.members.includes(h)) return;
        insertSorted(v.members, h);
        if (h.state === "joining") h.state = "joined";
        this.confchg(v, here(v.members), [], [addr(h, CpgReason.JOIN)]);
        return;
      }
      case "leave":
      case "procdown": {
        if (!view || !view.members.includes(h)) return;
        view.members = view.members.filter((m) => m !== h);
        const reason = req.kind === "leave" ? CpgReason.LEAVE : CpgReason.PROCDOWN;
        const to = req.kind === "leave" ? [...view.members, h] : view.members;
        if (req.kind === "leave") {
          h.state = "unjoined";
          h.group = null;
          h.key = null;
        }
        this.confchg(view, here(to), [addr(h, reason)], []);
        if (view.members.length === 0) ring.views.delete(req.key);
        return;
      }
    }
  }

  /** Queue one confchg (the view's current members) at every handle of `to`. */
  private confchg(view: View, to: CpgHandle[], left: CpgAddress[], joined: CpgAddress[]): void {
    if (to.length === 0) return; // nobody left to tell (the view is empty here)
    const viewId = ++this.viewSeq;
    const members = view.members.map((m) => addr(m, 0));
    this.trace(
      `confchg #${viewId} [${members.map(fmt)}] left [${left.map(fmt)}] joined [${
        joined.map(fmt)
      }]`,
    );
    for (const h of to) {
      const ev: CpgConfchg = {
        group: view.group.slice(),
        members: members.map((a) => ({ ...a })),
        left: left.map((a) => ({ ...a })),
        joined: joined.map((a) => ({ ...a })),
        viewId,
        time: this.now,
      };
      h.enqueue(() => h.callbacks.onConfchg?.(ev, h));
    }
  }

  /** Component key of each up node under the current network. */
  private components(): Map<number, number> {
    const comp = new Map<number, number>();
    const sets = this.partitionSets ?? [[...this.nodes.keys()]];
    sets.forEach((s, i) => {
      for (const n of s) if (this.nodes.get(n)?.up) comp.set(n, i);
    });
    return comp;
  }

  /**
   * Re-form the rings after a network or corosync change: every ring whose node set changes
   * first orders its queued requests (the departed nodes' messages: a random prefix), then its
   * surviving pieces report the departed processes (one NODEDOWN confchg per group); pieces that
   * now reach each other merge (one NODEUP confchg per returning process, at each side).
   */
  private reconfigure(): void {
    const comp = this.components();
    const before = new Map<number, number | null>();
    for (const n of this.nodes.values()) before.set(n.id, n.ring?.id ?? null);

    // 1. split the rings that lost nodes
    const pieces: Ring[] = [];
    for (const ring of this.rings) {
      const byComp = new Map<number, number[]>();
      for (const n of ring.nodes) {
        const c = comp.get(n);
        if (c === undefined) continue;
        const list = byComp.get(c) ?? [];
        list.push(n);
        byComp.set(c, list);
      }
      const first = [...byComp.values()][0];
      if (byComp.size === 1 && first.length === ring.nodes.length) {
        pieces.push(ring);
        continue;
      }
      const snapshot = new Map<number, Request[]>();
      for (const n of ring.nodes) snapshot.set(n, this.node(n).queue.splice(0));
      const wire = this.wireOrder(ring, snapshot);
      for (const nodes of byComp.values()) {
        const piece: Ring = { id: ++this.ringSeq, nodes, views: cloneViews(ring.views) };
        this.flushSplit(piece, wire, snapshot);
        const inPiece = new Set(nodes);
        for (const [key, view] of [...piece.views]) {
          const gone = view.members.filter((m) => !inPiece.has(m.nodeid));
          if (gone.length === 0) continue;
          view.members = view.members.filter((m) => inPiece.has(m.nodeid));
          this.confchg(view, view.members, gone.map((m) => addr(m, CpgReason.NODEDOWN)), []);
          if (view.members.length === 0) piece.views.delete(key);
        }
        pieces.push(piece);
      }
    }
    // nodes whose corosync just came up: a ring of their own, to merge below
    for (const n of this.nodes.values()) {
      if (n.up && !pieces.some((p) => p.nodes.includes(n.id))) {
        pieces.push({ id: ++this.ringSeq, nodes: [n.id], views: new Map() });
      }
    }

    // 2. merge the pieces that reach each other
    const byComp = new Map<number, Ring[]>();
    for (const p of pieces) {
      const c = comp.get(p.nodes[0])!;
      byComp.set(c, [...(byComp.get(c) ?? []), p]);
    }
    const rings: Ring[] = [];
    for (const group of byComp.values()) {
      if (group.length === 1) {
        rings.push(group[0]);
        continue;
      }
      group.sort((a, b) => a.nodes[0] - b.nodes[0]);
      for (const p of group) this.flushAll(p);
      rings.push(this.merge(group));
    }
    for (const r of rings) r.nodes.sort((a, b) => a - b);
    rings.sort((a, b) => a.nodes[0] - b.nodes[0]);
    this.rings = rings;

    for (const n of this.nodes.values()) {
      n.ring = rings.find((r) => r.nodes.includes(n.id)) ?? null;
      if (!n.up) n.queue = [];
    }
    const changed = [...this.nodes.values()]
      .filter((n) => (n.ring?.id ?? null) !== before.get(n.id))
      .map((n) => n.id);
    if (changed.length > 0) {
      this.trace(`rings ${rings.map((r) => `#${r.id}{${r.nodes.join(",")}}`).join(" ")}`);
      for (const fn of this.ringListeners) fn(changed);
    }
  }

  /**
   * One "wire order" for what a splitting ring had queued: a seeded interleaving of the nodes'
   * queues (each queue's order kept). Every piece orders a subsequence of it, so two pieces that
   * both deliver two messages deliver them in the same order.
   */
  private wireOrder(old: Ring, snapshot: Map<number, Request[]>) {
    const queues = old.nodes.map((n) => ({ n, reqs: snapshot.get(n) ?? [], i: 0 }));
    const out: { node: number; index: number; req: Request }[] = [];
    for (;;) {
      const live = queues.filter((q) => q.i < q.reqs.length);
      if (live.length === 0) return out;
      const q = live[this.rng.int(live.length)];
      out.push({ node: q.n, index: q.i, req: q.reqs[q.i++] });
    }
  }

  /**
   * Order, in a splitting ring's piece, what was queued before the split: everything its own
   * nodes queued, and of each departed node a prefix of its messages (`departedDelivery`).
   */
  private flushSplit(
    piece: Ring,
    wire: { node: number; index: number; req: Request }[],
    snapshot: Map<number, Request[]>,
  ): void {
    const inPiece = new Set(piece.nodes);
    const prefix = new Map<number, number>();
    for (const [n, q] of snapshot) {
      if (inPiece.has(n)) continue;
      let run = 0;
      while (run < q.length && q[run].kind === "mcast") run++;
      const mode = this.opts.departedDelivery;
      prefix.set(n, mode === "all" ? run : mode === "none" ? 0 : this.rng.int(run + 1));
    }
    for (const w of wire) {
      if (inPiece.has(w.node)) this.order(piece, w.req);
      else if (w.index < prefix.get(w.node)!) this.order(piece, w.req, true);
    }
  }

  /** Order everything the nodes of a ring have queued (before it merges). */
  private flushAll(ring: Ring): void {
    const snapshot = new Map(ring.nodes.map((n) => [n, this.node(n).queue.splice(0)]));
    for (const w of this.wireOrder(ring, snapshot)) this.order(ring, w.req);
  }

  /** Merge pieces (sorted by lowest node): each side sees every returning process join. */
  private merge(group: Ring[]): Ring {
    const keys: string[] = [];
    for (const p of group) for (const k of p.views.keys()) if (!keys.includes(k)) keys.push(k);
    const views = new Map<string, View>();
    for (const key of keys) {
      const all: CpgHandle[] = [];
      let name: Uint8Array | undefined;
      for (const p of group) {
        const v = p.views.get(key);
        if (v) {
          all.push(...v.members);
          name = v.group;
        }
      }
      all.sort(cmpHandle);
      for (const p of group) {
        const v = p.views.get(key);
        if (!v || v.members.length === 0) continue;
        const local = [...v.members];
        for (const j of all) {
          if (v.members.includes(j)) continue;
          insertSorted(v.members, j);
          this.confchg(v, local, [], [addr(j, CpgReason.NODEUP)]);
        }
      }
      views.set(key, { group: name!, members: all });
    }
    return { id: ++this.ringSeq, nodes: group.flatMap((p) => p.nodes), views };
  }
}

function addr(h: { nodeid: number; pid: number }, reason: number): CpgAddress {
  return { nodeid: h.nodeid, pid: h.pid, reason };
}

function fmt(a: CpgAddress): string {
  return `${a.nodeid}/${a.pid}`;
}

function insertSorted(list: CpgHandle[], h: CpgHandle): void {
  let i = 0;
  while (i < list.length && cmpHandle(list[i], h) < 0) i++;
  list.splice(i, 0, h);
}

function cloneViews(views: Map<string, View>): Map<string, View> {
  const out = new Map<string, View>();
  for (const [k, v] of views) out.set(k, { group: v.group, members: [...v.members] });
  return out;
}

/**
 * A simulated corosync quorum service (libquorum, cluster spec 2.3, 2.7 and 7) on top of a
 * {@linkcode CpgBus}: every node has votes (default 1) and the cluster has expected votes
 * (default: the sum of all nodes' votes); a node is quorate when the votes of the nodes in its
 * ring are MORE than half the expected votes (`two_node` off: 2 of 3, 3 of 4 or 5; 1 of 2 is
 * not quorate).
 *
 * A process opens a {@linkcode QuorumHandle} with {@linkcode SimQuorum.initialize} ("library"
 * when corosync is down on its node), calls {@linkcode QuorumHandle.trackStart}, and gets a
 * notification of the current state at its next dispatch, then one per ring change of its node
 * (partition, merge, a node's corosync stopping or starting) and per vote change. Notifications
 * are dispatched by {@linkcode CpgBus.step} like CPG events, in a seeded order relative to them:
 * a quorum change and the matching confchg may arrive in either order, as with corosync. When
 * corosync dies on the node, the handle gets `onTransportLost` (quorum_dispatch fails: the
 * daemon sets quorate := 0), every call returns "library", and {@linkcode SimQuorum.getQuorate}
 * returns "library".
 *
 * @example
 * ```ts
 * import { CpgBus } from "./cpg_bus.ts";
 * import { SimQuorum } from "./quorum.ts";
 * const bus = new CpgBus({ seed: 1 });
 * bus.addNodes(3);
 * const quorum = new SimQuorum(bus);
 * const h = quorum.initialize(bus.spawn(1), { onNotify: (n) => console.log(n.quorate) });
 * if (typeof h !== "string") h.trackStart();
 * bus.partition([[1], [2, 3]]); // node 1 loses quorum
 * bus.runUntilQuiet();
 * ```
 * @module
 */

import { type CpgBus, type CsResult, SimConnection, type SimProcess } from "./cpg_bus.ts";

/** One quorum notification (libquorum's notify callback). */
export interface QuorumNotification {
  quorate: boolean;
  /** The ring id (corosync's ring sequence); increases with every new ring. */
  ringSeq: number;
  /** Node ids of the ring, ascending (the view list). */
  members: number[];
  /** Virtual time (ms) of the change. */
  time: number;
}

/** Callbacks of a quorum handle; they run inside {@linkcode CpgBus.step}. */
export interface QuorumCallbacks {
  onNotify?(n: QuorumNotification, h: QuorumHandle): void;
  /** corosync died on the node (quorum_dispatch fails with CS_ERR_LIBRARY). */
  onTransportLost?(h: QuorumHandle): void;
}

/** Options of a {@linkcode SimQuorum}. */
export interface SimQuorumOptions {
  /** Votes per node id (default 1 each). */
  votes?: Record<number, number>;
  /** Expected votes (default: the sum of the votes of every node of the bus). */
  expectedVotes?: number;
}

/** A quorum connection (`quorum_handle_t`) of a simulated process. */
export class QuorumHandle extends SimConnection {
  /** Whether `trackStart` is in effect. */
  tracking = false;

  constructor(
    bus: CpgBus,
    process: SimProcess,
    private readonly service: SimQuorum,
    readonly callbacks: QuorumCallbacks,
  ) {
    super(bus, process);
  }

  /**
   * `quorum_trackstart(CS_TRACK_CHANGES)`: a notification of the current state is queued now,
   * one more per change. ok, library (corosync gone), bad_handle (finalized).
   */
  trackStart(): CsResult {
    const pre = this.precheck();
    if (pre) return pre;
    this.tracking = true;
    this.service.notifyHandle(this);
    return "ok";
  }

  /** `quorum_trackstop`. */
  trackStop(): CsResult {
    const pre = this.precheck();
    if (pre) return pre;
    this.tracking = false;
    return "ok";
  }

  /** `quorum_getquorate`: the node's current flag, or "library" / "bad_handle". */
  getQuorate(): boolean | CsResult {
    const pre = this.precheck();
    if (pre) return pre;
    return this.service.getQuorate(this.nodeid);
  }

  /** `quorum_finalize`. */
  finalize(): CsResult {
    if (this.closed) return "bad_handle";
    this.bus.assertAlive(this.process);
    this.close();
    return "ok";
  }

  protected override onLost(): void {
    this.callbacks.onTransportLost?.(this);
  }
}

/** The quorum service of every node of a bus. See the module documentation. */
export class SimQuorum {
  private readonly votes = new Map<number, number>();
  private expected: number | undefined;
  private readonly handles = new Set<QuorumHandle>();

  constructor(readonly bus: CpgBus, opts: SimQuorumOptions = {}) {
    for (const [n, v] of Object.entries(opts.votes ?? {})) this.votes.set(Number(n), v);
    this.expected = opts.expectedVotes;
    bus.onRingChange((changed) => this.notifyNodes(changed));
  }

  /** `quorum_initialize` (type QUORUM_SET): a handle, or "library" when corosync is down. */
  initialize(process: SimProcess, callbacks: QuorumCallbacks): QuorumHandle | "library" {
    this.bus.assertAlive(process);
    if (!this.bus.corosyncUp(process.nodeid)) return "library";
    const h = new QuorumHandle(this.bus, process, this, callbacks);
    this.handles.add(h);
    return h;
  }

  /** Votes of a node (default 1). */
  votesOf(nodeid: number): number {
    return this.votes.get(nodeid) ?? 1;
  }

  /** Expected votes: the configured value, else the sum of every node's votes. */
  expectedVotes(): number {
    return this.expected ??
      this.bus.nodeIds().reduce((sum, n) => sum + this.votesOf(n), 0);
  }

  /** Change a node's votes (every tracking handle of every up node is notified). */
  setVotes(nodeid: number, votes: number): void {
    this.votes.set(nodeid, votes);
    this.notifyNodes(this.bus.nodeIds());
  }

  /** Change (or with undefined, reset to the default) the expected votes; notifies everyone. */
  setExpectedVotes(expected: number | undefined): void {
    this.expected = expected;
    this.notifyNodes(this.bus.nodeIds());
  }

  /** The node's quorate flag as corosync computes it, or "library" when corosync is down. */
  getQuorate(nodeid: number): boolean | "library" {
    const ring = this.bus.ringOf(nodeid);
    if (!ring) return "library";
    const have = ring.nodes.reduce((sum, n) => sum + this.votesOf(n), 0);
    return have * 2 > this.expectedVotes();
  }

  /** @internal queue the node's current state at one handle. */
  notifyHandle(h: QuorumHandle): void {
    const ring = this.bus.ringOf(h.nodeid);
    if (!ring) return;
    const n: QuorumNotification = {
      quorate: this.getQuorate(h.nodeid) === true,
      ringSeq: ring.id,
      members: ring.nodes,
      time: this.bus.now,
    };
    h.enqueue(() => h.callbacks.onNotify?.({ ...n, members: [...n.members] }, h));
  }

  private notifyNodes(nodes: number[]): void {
    const set = new Set(nodes);
    for (const h of [...this.handles]) {
      if (h.closed) {
        this.handles.delete(h);
        continue;
      }
      if (h.tracking && !h.lost && set.has(h.nodeid)) this.notifyHandle(h);
    }
  }
}

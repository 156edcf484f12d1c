/**
 * The cluster simulator (issue 7 point 5): N pmxcfs nodes in one process, each a real
 * {@linkcode Dfsm} core + {@linkcode GroupDriver} + {@linkcode DcdbApp} + {@linkcode Database}
 * (SQLite in a temporary directory) + {@linkcode DcdbCommitter}, on the simulated corosync of
 * `cpg_bus.ts` and `quorum.ts`; the database group only (`pve_dcdb_v1`, protocol 1).
 *
 * - Each node has a wall clock: `baseTime + bus.now / 1000 + skew` (seconds; the skew is
 *   seeded, within ±`maxSkew`). It is the `now` of every DFSM event of that node.
 * - The daemon's service loop is modelled per node: CPG and quorum services are initialised at
 *   start; after a service-down (LEAVE) or a lost corosync connection they are re-initialised
 *   on a whole second at least 6 s after the previous attempt (spec 2.4), as soon as corosync
 *   runs on the node (attempts while it is down would only fail and log). TRY_AGAIN on mcast
 *   is retried every 100 ms (the driver gives up after 100 attempts), on join for ever.
 * - Faults: {@linkcode SimCluster.partition} / {@linkcode SimCluster.heal},
 *   {@linkcode SimCluster.crash} (kill -9 of the daemon; with `{ node: true }` the whole node,
 *   corosync included) and {@linkcode SimCluster.restart} (a new pid; the database is reopened
 *   from its file, as a restarted daemon does), {@linkcode SimCluster.stopCorosync} /
 *   {@linkcode SimCluster.startCorosync}, {@linkcode SimCluster.injectTryAgain},
 *   {@linkcode SimCluster.setExpectedVotes} (both sides of a split quorate: Quirk C1).
 * - Operations go through each node's committer ({@linkcode SimCluster.op}); their errno
 *   arrives when the own message is delivered and applied (spec 5.4).
 * - {@linkcode SimCluster.check} runs the invariants at a quiescent point (see its doc).
 *
 * Everything is decided by the seed: same seed, same run (the database files are the only
 * I/O; they are removed by {@linkcode SimCluster.close}).
 *
 * @example
 * ```ts
 * import { SimCluster } from "./cluster.ts";
 * using c = new SimCluster({ seed: 1, nodes: 3 });
 * c.runUntilQuiet(); // all three SYNCED
 * const r = c.op(1, { type: "mkdir", path: "nodes" });
 * c.runUntilQuiet();
 * console.log(r.errno, c.checksums()); // 0, three equal checksums
 * c.partition([[1, 2], [3]]);
 * c.runUntilQuiet();
 * console.log(c.errnoOf(3, { type: "mkdir", path: "x" })); // 13 (EACCES: no quorum)
 * c.heal();
 * c.runUntilQuiet();
 * console.log(c.check()); // [] (no problem)
 * ```
 * @module
 */
import { CpgBus, type CpgHandle, CS_ERROR, type SimProcess } from "./cpg_bus.ts";
import { type QuorumHandle, SimQuorum } from "./quorum.ts";
import { prng } from "../unit/prng.ts";
import { Dfsm } from "../../src/dfsm/dfsm.ts";
import { GroupDriver } from "../../src/dfsm/driver.ts";
import { decodeMessage, isNormal } from "../../src/dfsm/codec.ts";
import {
  CS,
  type DeliverResult,
  type DfsmApp,
  type DfsmConfig,
  type DfsmContext,
  type MemberId,
  Mode,
} from "../../src/dfsm/types.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import { DcdbCommitter } from "../../src/dcdb/committer.ts";
import { DcdbMsg, decodeFuseMessage, decodeUnlockMessage } from "../../src/dcdb/codec.ts";
import { Database } from "../../src/store/database.ts";
import type { Op } from "../../src/memdb/op.ts";
import type { Memdb } from "../../src/memdb/memdb.ts";

/** The database group (spec 5.1). */
export const DCDB_GROUP = "pve_dcdb_v1";

/** Options of a {@linkcode SimCluster}. */
export interface SimClusterOptions {
  /** Seed of everything (bus choices, skews, the random helpers). */
  seed: number;
  /** Number of nodes (ids 1..n), started at once. */
  nodes: number;
  /** Probability that an mcast answers TRY_AGAIN (default 0). */
  tryAgainRate?: number;
  /** Wall-clock seconds at virtual time 0 (default 1_795_561_000). */
  baseTime?: number;
  /** Largest clock skew in seconds, either way (default 2). */
  maxSkew?: number;
  /**
   * Quirk C4 switch of the core (default true: a TS-only cluster; with false, concurrent
   * writes during an UPDATE window may leave replicas different until a verification).
   */
  holdUnsyncedSenders?: boolean;
  /** One line per bus action (debugging a seed). */
  trace?: (line: string) => void;
  /** What an mcast of an unjoined handle does (see `CpgBusOptions`; corosync 2/3: "drop"). */
  unjoinedMcast?: "not_exist" | "drop";
}

/** The result of an operation: `errno` once answered. */
export interface OpResult {
  node: number;
  ops: readonly Op[];
  /** undefined while waiting (or forever, when the daemon died first). */
  errno?: number;
  /** Virtual time (ms) of the answer. */
  at?: number;
}

/** One successfully applied message in a node's history (what its tree is made of). */
export interface LineageEntry {
  /** `nodeid/pid/count` of the message (a resent copy has the id of its original). */
  id: string;
  type: Op["type"] | "unlock" | "unlockRequest";
  path: string;
  to?: string;
  /** Writes only: the unique tag at the start of the data (see {@linkcode writeTag}). */
  tag?: string;
  offset?: number;
  data?: Uint8Array;
}

/** An acknowledged write that the checker follows. */
export interface AckedWrite {
  tag: string;
  node: number;
  path: string;
  offset: number;
  data: Uint8Array;
  at: number;
}

/** One simulated pmxcfs node. Fields are for inspection; drive it through the cluster. */
export class SimNode {
  readonly id: number;
  readonly dbPath: string;
  /** Clock skew in seconds. */
  readonly skew: number;
  process: SimProcess | null = null;
  cpg: CpgHandle | null = null;
  quorumHandle: QuorumHandle | null = null;
  /** The daemon's quorum flag (from the notifications; false when corosync is lost). */
  quorate = false;
  db!: Database;
  app!: DcdbApp;
  core!: Dfsm;
  driver!: GroupDriver;
  committer!: DcdbCommitter;
  /** Log lines of all incarnations: `[dcdb] notice: members: 1/1, 2/1`, `[sim] ...`. */
  readonly logs: string[] = [];
  /** The history of the tree (survives restarts: the database file does). */
  lineage: LineageEntry[] = [];
  lineageIds = new Set<string>();
  /** The daemon's generation (bumped by crash) to drop stale timers. */
  generation = 0;
  /** Service-loop state. */
  lastCpgAttempt: number | undefined;
  lastQuorumAttempt: number | undefined;
  cpgWanted = false;
  quorumWanted = false;
  cpgTimer: (() => void) | null = null;
  quorumTimer: (() => void) | null = null;
  flushTimer: (() => void) | null = null;
  joinTimer: (() => void) | null = null;
  /** The core went to ERROR / VERSION_ERROR: no restart until the daemon restarts. */
  dead = false;

  constructor(id: number, dbPath: string, skew: number) {
    this.id = id;
    this.dbPath = dbPath;
    this.skew = skew;
  }

  /** Whether the daemon runs. */
  get alive(): boolean {
    return this.process !== null;
  }

  /** The DFSM mode (START when the daemon is not running). */
  get mode(): Mode {
    return this.alive ? this.core.mode : Mode.START;
  }

  /** This daemon's CPG member id. */
  get member(): MemberId {
    return { nodeid: this.id, pid: this.process?.pid ?? 0 };
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The tag a write's data starts with (`W<n>;`), or undefined. */
export function writeTag(data: Uint8Array): string | undefined {
  if (data.length < 3 || data[0] !== 0x57) return undefined; // "W"
  const end = data.indexOf(0x3b); // ";"
  if (end < 0 || end > 20) return undefined;
  return dec.decode(data.subarray(0, end + 1));
}

/** The message count of a NORMAL payload handed to the application (its header precedes it). */
function countOf(payload: Uint8Array): number | undefined {
  if (payload.byteOffset < 24) return undefined;
  const whole = new Uint8Array(payload.buffer, payload.byteOffset - 24, 24 + payload.length);
  const m = decodeMessage(whole);
  if (!m.ok || !isNormal(m.msg)) return undefined;
  return m.msg.count;
}

function sameMember(a: MemberId | undefined, b: MemberId): boolean {
  return !!a && a.nodeid === b.nodeid && a.pid === b.pid;
}

function epochKey(core: Dfsm): string {
  const e = core.syncEpoch;
  return `${e.nodeid}/${e.pid}/${e.counter}/${e.time}`;
}

/**
 * Whether the node's VM list differs from the one a rebuild from its tree gives (storage spec
 * 5.3: at open and after a resync). The list evolves by register/remove on ops (5.2), which
 * can drift from the tree: deleting a DIRECTORY named like a VM config (`mkdir
 * nodes/n1/lxc/101.conf`, then rmdir) drops the VMID "whatever node it was registered to";
 * renaming a guest directory moves configs without touching the list. Nodes that rebuilt
 * (resync, restart) and nodes that did not then answer EEXIST differently: replicas diverge.
 */
export function vmListDrifted(memdb: Memdb): boolean {
  const want = memdb.vmListOfTree().vms ?? new Map();
  const have = memdb.vmlist.vms;
  if (have.size !== want.size) return true;
  for (const [vmid, v] of have) {
    const w = want.get(vmid);
    if (!w || w.node !== v.node || w.type !== v.type) return true;
  }
  return false;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The DcdbApp of a node, recording its lineage and the sync rounds' outcomes. */
class TracingApp implements DfsmApp {
  constructor(
    private readonly inner: DcdbApp,
    private readonly node: SimNode,
    private readonly cluster: SimCluster,
  ) {}

  deliver(
    ctx: DfsmContext,
    from: MemberId,
    subtype: number,
    time: number,
    payload: Uint8Array,
  ): DeliverResult {
    const r = this.inner.deliver(ctx, from, subtype, time, payload);
    if (r.ret !== "reject" && (r.result ?? 0) >= 0) {
      this.cluster.recordApplied(this.node, from, subtype, payload);
    }
    return r;
  }
  getState(ctx: DfsmContext): Uint8Array | undefined {
    return this.inner.getState(ctx);
  }
  processStates(
    ctx: DfsmContext,
    states: { member: MemberId; state: Uint8Array }[],
  ): { synced: MemberId[] } | "error" {
    const r = this.inner.processStates(ctx, states);
    if (r !== "error" && sameMember(this.inner.currentLeader, this.node.member)) {
      this.cluster.snapshots.set(epochKey(this.node.core), [...this.node.lineage]);
    }
    return r;
  }
  processUpdate(ctx: DfsmContext, from: MemberId, payload: Uint8Array): boolean {
    return this.inner.processUpdate(ctx, from, payload);
  }
  commit(ctx: DfsmContext): boolean {
    const ok = this.inner.commit(ctx);
    if (ok) this.cluster.recordCommit(this.node, this.inner.currentLeader);
    return ok;
  }
  cleanup(): void {
    this.inner.cleanup();
  }
  checksum(): Uint8Array | undefined {
    return this.inner.checksum();
  }
  onConfchg(ctx: DfsmContext, members: MemberId[]): void {
    this.inner.onConfchg(ctx, members);
  }
}

/** Counters of a run (reported by the random test). */
export interface SimStats {
  ops: number;
  acked: number;
  ackedOk: number;
  checks: number;
  /** Commits that discarded applied messages while the leader had others (divergent sides). */
  divergences: number;
  /** ... of which while two disjoint rings were quorate (Quirk C1 split brain). */
  splitBrainDivergences: number;
  /** Acknowledged writes lost by a divergence: C1 split brain / quorum belief lagging. */
  lostSplitBrain: number;
  lostQuorumLag: number;
  /** Acknowledged writes that were acked while corosync said the node was not quorate. */
  ackedWithoutQuorum: number;
  /** Applies after which a node's VM list differed from its tree's (see `vmListDrifted`). */
  vmListDrifts: number;
}

/** See the module documentation. */
export class SimCluster {
  readonly bus: CpgBus;
  readonly quorum: SimQuorum;
  readonly nodes: SimNode[] = [];
  readonly rng: ReturnType<typeof prng>;
  readonly baseTime: number;
  readonly config: DfsmConfig;
  /** Leader lineage snapshots by sync epoch (taken when the leader processed the states). */
  readonly snapshots = new Map<string, LineageEntry[]>();
  /** Acknowledged successful writes with a tag, on a node corosync called quorate. */
  readonly acked = new Map<string, AckedWrite>();
  /** Tags of acknowledged writes lost by a divergence, and why. */
  readonly explainedLoss = new Map<string, "splitBrain" | "quorumLag">();
  readonly stats: SimStats = {
    ops: 0,
    acked: 0,
    ackedOk: 0,
    checks: 0,
    divergences: 0,
    splitBrainDivergences: 0,
    lostSplitBrain: 0,
    lostQuorumLag: 0,
    ackedWithoutQuorum: 0,
    vmListDrifts: 0,
  };
  /** A VM list drifted from its tree since the last all-synced check (see `vmListDrifted`). */
  vmListDriftEra = false;
  /** Problems found outside `check` (stale-leader commits, exceptions in callbacks). */
  readonly problems: string[] = [];
  /** Two disjoint rings were quorate at once since the last all-synced check. */
  splitEra = false;
  private readonly dir: string;
  private tagSeq = 0;

  constructor(readonly opts: SimClusterOptions) {
    this.bus = new CpgBus({
      seed: opts.seed,
      tryAgainRate: opts.tryAgainRate ?? 0,
      unjoinedMcast: opts.unjoinedMcast ?? "not_exist",
      trace: opts.trace,
    });
    this.quorum = new SimQuorum(this.bus);
    this.rng = prng((opts.seed ^ 0x5eed) >>> 0);
    this.baseTime = opts.baseTime ?? 1_795_561_000;
    this.config = {
      groupName: DCDB_GROUP,
      protocolVersion: 1,
      domain: "dcdb",
      verifyPeriod: 3600,
      holdUnsyncedSenders: opts.holdUnsyncedSenders ?? true,
    };
    this.dir = Deno.makeTempDirSync({ prefix: "pmxcfs-sim-" });
    const maxSkew = opts.maxSkew ?? 2;
    for (const id of this.bus.addNodes(opts.nodes)) {
      Deno.mkdirSync(`${this.dir}/node${id}`);
      const skew = Math.round((this.rng.next() * 2 - 1) * maxSkew * 1000) / 1000;
      this.nodes.push(new SimNode(id, `${this.dir}/node${id}/config.db`, skew));
    }
    this.bus.onRingChange((changed) => this.onRingChange(changed));
    for (const n of this.nodes) this.startDaemon(n);
  }

  // ---- inspection -----------------------------------------------------------------------------

  /** Node `id` (1-based). */
  node(id: number): SimNode {
    const n = this.nodes[id - 1];
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Wall clock of node `id` in seconds. */
  clock(id: number): number {
    return this.baseTime + this.bus.now / 1000 + this.node(id).skew;
  }

  /** Tree checksum (hex) of every running node, by node id. */
  checksums(): Map<number, string> {
    const m = new Map<number, string>();
    for (const n of this.nodes) if (n.alive) m.set(n.id, hex(n.db.memdb.treeChecksum()));
    return m;
  }

  /** The log lines of node `id` (all its daemon's incarnations). */
  logs(id: number): string[] {
    return this.node(id).logs;
  }

  /** Nodes connected to each other with corosync and the daemon running, as a ring list. */
  connected(): boolean {
    const rings = new Set<number>();
    for (const n of this.nodes) {
      const r = this.bus.ringOf(n.id);
      if (!r || !n.alive || n.dead) return false;
      rings.add(r.id);
    }
    return rings.size === 1;
  }

  /** Bus quiet (no event, request or timer) and every driver idle. */
  isQuiet(): boolean {
    return this.bus.isQuiet() && this.nodes.every((n) => !n.alive || n.driver.idle);
  }

  // ---- running --------------------------------------------------------------------------------

  /** Steps until quiet (virtual time jumps over re-initialisation delays). Returns the steps. */
  runUntilQuiet(maxSteps = 2_000_000): number {
    let n = 0;
    while (this.bus.step()) {
      if (++n >= maxSteps) throw new Error(`not quiet after ${maxSteps} steps`);
    }
    return n;
  }

  /** At most `n` bus steps. */
  run(n: number): number {
    return this.bus.run(n);
  }

  /**
   * Commits `ops` (one op, or the writes of one file handle) on node `id` through its
   * committer. The result's `errno` is set when the answer comes (possibly at once: EACCES
   * without quorum, EBUSY when the send fails); never when the daemon dies first.
   */
  op(id: number, ops: Op | readonly Op[]): OpResult {
    const n = this.node(id);
    const list = Array.isArray(ops) ? ops as readonly Op[] : [ops as Op];
    const res: OpResult = { node: id, ops: list };
    this.stats.ops++;
    if (!n.alive) {
      n.logs.push(`[sim] op on a stopped daemon: ENOTCONN`);
      res.errno = 107; // ENOTCONN: the mount is gone
      res.at = this.bus.now;
      return res;
    }
    const gen = n.generation;
    n.committer.commit(list, (errno) => {
      if (gen !== n.generation) return;
      res.errno = errno;
      res.at = this.bus.now;
      this.stats.acked++;
      if (errno === 0) this.onAckOk(n, list);
    });
    this.kick(n);
    return res;
  }

  /** {@linkcode SimCluster.op}, then run until quiet; returns the errno (-1: never answered). */
  errnoOf(id: number, ops: Op | readonly Op[]): number {
    const r = this.op(id, ops);
    this.runUntilQuiet();
    return r.errno ?? -1;
  }

  /** A write op whose data starts with a unique tag (`W<n>;`) followed by seeded bytes. */
  taggedWrite(path: string, offset: number, size: number, truncate = false): Op {
    const tag = enc.encode(`W${++this.tagSeq};`);
    const data = new Uint8Array(Math.max(size, tag.length));
    data.set(tag);
    for (let i = tag.length; i < data.length; i++) data[i] = this.rng.int(256);
    return { type: "write", path, offset, data, truncate };
  }

  /** Feeds the verification timer to every running node (4.11; the lowest synced one acts). */
  verify(): void {
    for (const n of this.nodes) {
      if (n.alive && n.cpg) {
        n.driver.timer();
        this.kick(n);
      }
    }
  }

  // ---- faults ---------------------------------------------------------------------------------

  /** Network partition into these sets of node ids (others alone). */
  partition(sets: number[][]): void {
    this.bus.partition(sets);
    this.noteQuorumRings();
  }

  /** Everyone connected again. */
  heal(): void {
    this.bus.heal();
    this.noteQuorumRings();
  }

  /** corosync stops on node `id` (the daemon loses its connections, others see NODEDOWN). */
  stopCorosync(id: number): void {
    this.bus.stopCorosync(id);
    this.noteQuorumRings();
  }

  /** corosync starts again on node `id`; the daemon reconnects on its next attempt. */
  startCorosync(id: number): void {
    this.bus.startCorosync(id);
    this.noteQuorumRings();
  }

  /** The next `count` mcasts (or joins) on node `id` answer TRY_AGAIN. */
  injectTryAgain(id: number, count: number, op: "mcast" | "join" = "mcast"): void {
    this.bus.injectTryAgain(id, count, op);
  }

  /** Expected votes (undefined: the default, all nodes); low values let both sides be quorate. */
  setExpectedVotes(v: number | undefined): void {
    this.quorum.setExpectedVotes(v);
    this.noteQuorumRings();
  }

  /**
   * The daemon of node `id` is killed (kill -9): its waiting callers never get an answer; with
   * `{ node: true }` the whole node fails (corosync too: peers see NODEDOWN).
   */
  crash(id: number, opts: { node?: boolean } = {}): void {
    const n = this.node(id);
    if (opts.node) this.bus.crashNode(id);
    if (!n.alive) {
      this.noteQuorumRings();
      return;
    }
    n.logs.push(`[sim] crash${opts.node ? " node" : ""}`);
    if (n.process!.alive) n.process!.crash();
    this.stopTimers(n);
    n.generation++;
    n.process = null;
    n.cpg = null;
    n.quorumHandle = null;
    n.quorate = false;
    n.db.close();
    this.noteQuorumRings();
  }

  /**
   * Starts the daemon of node `id` again (a new pid, the database reopened from its file);
   * corosync is started too when it was down and `{ corosync: true }`.
   */
  restart(id: number, opts: { corosync?: boolean } = {}): void {
    const n = this.node(id);
    if (n.alive) this.crash(id);
    if (opts.corosync) this.bus.startCorosync(id);
    this.startDaemon(n);
    this.noteQuorumRings();
  }

  /** Removes the databases' directory (closes what is open). */
  close(): void {
    for (const n of this.nodes) {
      if (n.alive) {
        try {
          n.db.close();
        } catch { /* already closed */ }
      }
    }
    Deno.removeSync(this.dir, { recursive: true });
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- the checker ----------------------------------------------------------------------------

  /**
   * The invariants at a quiescent point; returns the problems (empty: fine). Throws when the
   * cluster is not quiet.
   *
   * 1. Within each ring, every running member in SYNCED mode has the same tree checksum.
   * 2. When connected (one ring, every daemon running): every member is SYNCED (nobody stays
   *    out of sync once the bus is quiet and connected).
   * 3. When connected, for every acknowledged successful write W (unique tag, acked while
   *    corosync called its node quorate) and every member M: W's message is in M's lineage
   *    (the applied history its tree descends from), unless a commit replaced M's history by
   *    a divergent leader's (Quirk C1 split brain, or a node whose quorum flag lagged:
   *    counted in `stats`, not a failure); and if no later entry of M's lineage touches W's
   *    path (any op but mtime on the path, an ancestor or a descendant), M's file holds W's
   *    bytes at W's offset.
   * 4. Problems recorded on the way: a commit that discarded applied messages although the
   *    leader had nothing the member lacked (a stale leader), exceptions in callbacks.
   */
  check(): string[] {
    if (!this.isQuiet()) throw new Error("check() needs a quiescent cluster");
    this.stats.checks++;
    const out = [...this.problems];
    this.problems.length = 0;
    const byRing = new Map<number, SimNode[]>();
    for (const n of this.nodes) {
      const r = this.bus.ringOf(n.id);
      if (!r || !n.alive) continue;
      if (!byRing.has(r.id)) byRing.set(r.id, []);
      byRing.get(r.id)!.push(n);
    }
    for (const [ring, ns] of byRing) {
      const synced = ns.filter((n) => n.mode === Mode.SYNCED);
      const sums = new Set(synced.map((n) => hex(n.db.memdb.treeChecksum())));
      if (sums.size > 1) {
        out.push(
          `ring ${ring}: synced members differ: ` +
            synced.map((n) => `${n.id}=${hex(n.db.memdb.treeChecksum()).slice(0, 12)}`).join(" ") +
            (this.vmListDriftEra ? " (after a VM list drift)" : ""),
        );
      }
    }
    if (!this.connected()) return out;
    for (const n of this.nodes) {
      if (n.mode !== Mode.SYNCED) out.push(`node ${n.id} not synced (mode ${n.mode})`);
    }
    if (out.length) return out;
    for (const n of this.nodes) out.push(...this.checkAcked(n));
    if (out.length === 0 && !this.splitRings()) this.splitEra = false;
    if (out.length === 0) {
      this.vmListDriftEra = this.nodes.some((n) => vmListDrifted(n.db.memdb));
    }
    return out;
  }

  private checkAcked(n: SimNode): string[] {
    const out: string[] = [];
    const pos = new Map<string, number>();
    n.lineage.forEach((e, i) => {
      if (e.tag) pos.set(e.tag, i);
    });
    for (const w of this.acked.values()) {
      const i = pos.get(w.tag);
      if (i === undefined) {
        if (this.explainedLoss.has(w.tag)) continue;
        out.push(`node ${n.id}: acknowledged write ${w.tag} ${w.path} (node ${w.node}) lost`);
        continue;
      }
      const later = n.lineage.slice(i + 1).some((e) =>
        e.type !== "mtime" && [e.path, e.to].some((p) =>
          p !== undefined &&
          (p === w.path || w.path.startsWith(p + "/") || p.startsWith(w.path + "/"))
        )
      );
      if (later) continue;
      const got = n.db.memdb.read(w.path);
      const seen = got instanceof Uint8Array
        ? got.subarray(w.offset, w.offset + w.data.length)
        : undefined;
      if (!seen || seen.length !== w.data.length || seen.some((b, k) => b !== w.data[k])) {
        out.push(`node ${n.id}: write ${w.tag} ${w.path} not visible although nothing replaced it`);
      }
    }
    return out;
  }

  /** How many disjoint rings corosync calls quorate now (≥ 2: split brain). */
  private splitRings(): boolean {
    const rings = new Map<number, number>();
    for (const n of this.nodes) {
      const r = this.bus.ringOf(n.id);
      if (r && this.quorum.getQuorate(n.id) === true) rings.set(r.id, n.id);
    }
    return rings.size >= 2;
  }

  private noteQuorumRings(): void {
    if (this.splitRings()) this.splitEra = true;
  }

  /** @internal a successfully applied NORMAL message (TracingApp). */
  recordApplied(n: SimNode, from: MemberId, subtype: number, payload: Uint8Array): void {
    const id = `${from.nodeid}/${from.pid}/${countOf(payload) ?? "?"}`;
    let e: LineageEntry | undefined;
    if (subtype === DcdbMsg.Unlock || subtype === DcdbMsg.UnlockRequest) {
      const m = decodeUnlockMessage(payload);
      if (!m.ok || subtype === DcdbMsg.UnlockRequest) return; // a request changes nothing here
      e = { id, type: "unlock", path: m.value.path };
    } else {
      const m = decodeFuseMessage(subtype, payload);
      if (!m.ok) return;
      const op = m.value;
      e = { id, type: op.type, path: op.path };
      if (op.type === "rename") e.to = op.to;
      if (op.type === "write") {
        e.offset = op.offset;
        e.data = op.data.slice();
        e.tag = writeTag(op.data);
      }
    }
    n.lineage.push(e);
    n.lineageIds.add(id);
    if (e.path.startsWith("nodes/") || e.to?.startsWith("nodes/") || e.path === "nodes") {
      if (vmListDrifted(n.db.memdb)) {
        this.stats.vmListDrifts++;
        this.vmListDriftEra = true;
      }
    }
  }

  /** @internal a successful commit of a sync round at `n` (TracingApp). */
  recordCommit(n: SimNode, leader: MemberId | undefined): void {
    const snap = this.snapshots.get(epochKey(n.core));
    if (!snap) {
      this.problems.push(
        `node ${n.id}: commit without a leader snapshot (leader ${leader?.nodeid})`,
      );
      return;
    }
    const leaderIds = new Set(snap.map((e) => e.id));
    const discarded = n.lineage.filter((e) => !leaderIds.has(e.id));
    const gained = snap.some((e) => !n.lineageIds.has(e.id));
    if (discarded.length) {
      if (!gained) {
        this.problems.push(
          `node ${n.id}: commit from leader ${leader?.nodeid}/${leader?.pid} discarded ` +
            `${discarded.length} applied messages (${discarded[0].id} ...) and brought nothing`,
        );
      } else {
        this.stats.divergences++;
        const why = this.splitEra ? "splitBrain" : "quorumLag";
        if (this.splitEra) this.stats.splitBrainDivergences++;
        for (const e of discarded) {
          if (e.tag && this.acked.has(e.tag) && !this.explainedLoss.has(e.tag)) {
            this.explainedLoss.set(e.tag, why);
            if (why === "splitBrain") this.stats.lostSplitBrain++;
            else this.stats.lostQuorumLag++;
          }
        }
      }
    }
    n.lineage = [...snap];
    n.lineageIds = leaderIds;
  }

  private onAckOk(n: SimNode, ops: readonly Op[]): void {
    this.stats.ackedOk++;
    if (ops.length !== 1 || ops[0].type !== "write") return;
    const tag = writeTag(ops[0].data);
    if (!tag || ops[0].data.length === 0) return;
    if (this.quorum.getQuorate(n.id) !== true) {
      this.stats.ackedWithoutQuorum++;
      return;
    }
    this.acked.set(tag, {
      tag,
      node: n.id,
      path: ops[0].path,
      offset: ops[0].offset,
      data: ops[0].data,
      at: this.bus.now,
    });
  }

  // ---- the daemon -----------------------------------------------------------------------------

  private log(n: SimNode, line: string): void {
    n.logs.push(line);
  }

  private startDaemon(n: SimNode): void {
    n.process = this.bus.spawn(n.id);
    n.dead = false;
    const pid = n.process.pid;
    n.logs.push(`[sim] start ${n.id}/${pid}`);
    n.db = Database.open(n.dbPath, Math.floor(this.clock(n.id)), (level, msg) => {
      n.logs.push(`[database] ${level}: ${msg}`);
    });
    n.app = new DcdbApp(n.db, {
      quorate: () => n.quorate,
      self: () => ({ nodeid: n.id, pid }),
    });
    n.core = new Dfsm(this.config, new TracingApp(n.app, n, this));
    const gen = n.generation;
    n.driver = new GroupDriver(n.core, {
      mcast: (bytes) => n.cpg ? CS_ERROR[n.cpg.mcast(bytes)] : CS.ERR_BAD_HANDLE,
      leave: () => {
        const r = n.cpg?.leave();
        if (r && r !== "ok") n.logs.push(`[sim] cpg_leave: ${r}`);
      },
      serviceDown: (restartable) => {
        if (gen !== n.generation) return;
        n.logs.push(`[sim] service down${restartable ? "" : " (not restartable)"}`);
        if (!restartable) {
          n.dead = true;
          return;
        }
        n.cpgWanted = true;
        this.scheduleCpg(n);
      },
    }, {
      now: () => this.clock(n.id),
      log: (domain, level, text) => n.logs.push(`[${domain}] ${level}: ${text}`),
    });
    n.committer = new DcdbCommitter(n.driver, n.db, { quorate: () => n.quorate });
    n.lastCpgAttempt = undefined;
    n.lastQuorumAttempt = undefined;
    n.quorate = false;
    n.quorumWanted = true;
    n.cpgWanted = true;
    this.initQuorum(n);
    this.initCpg(n);
  }

  private stopTimers(n: SimNode): void {
    for (const t of [n.cpgTimer, n.quorumTimer, n.flushTimer, n.joinTimer]) t?.();
    n.cpgTimer =
      n.quorumTimer =
      n.flushTimer =
      n.joinTimer =
        null;
  }

  /** Delay (ms) until the first whole second at least 6 s after `last` (spec 2.4). */
  private initDelay(n: SimNode, last: number | undefined): number {
    if (last === undefined) return 0;
    const now = this.clock(n.id);
    const target = Math.floor(last) + 6;
    return Math.max(0, Math.ceil((target - now) * 1000));
  }

  private scheduleCpg(n: SimNode): void {
    if (n.cpgTimer || !n.alive || n.dead || !n.cpgWanted) return;
    if (!this.bus.corosyncUp(n.id)) return; // retried from onRingChange when it is back
    const gen = n.generation;
    n.cpgTimer = this.bus.schedule(this.initDelay(n, n.lastCpgAttempt), () => {
      n.cpgTimer = null;
      if (gen === n.generation) this.initCpg(n);
    });
  }

  private scheduleQuorum(n: SimNode): void {
    if (n.quorumTimer || !n.alive || !n.quorumWanted) return;
    if (!this.bus.corosyncUp(n.id)) return;
    const gen = n.generation;
    n.quorumTimer = this.bus.schedule(this.initDelay(n, n.lastQuorumAttempt), () => {
      n.quorumTimer = null;
      if (gen === n.generation) this.initQuorum(n);
    });
  }

  private onRingChange(changed: number[]): void {
    for (const id of changed) {
      const n = this.node(id);
      if (!n.alive || !this.bus.corosyncUp(id)) continue;
      this.scheduleCpg(n);
      this.scheduleQuorum(n);
    }
  }

  private initQuorum(n: SimNode): void {
    n.lastQuorumAttempt = this.clock(n.id);
    const h = this.quorum.initialize(n.process!, {
      onNotify: (ev) => {
        if (n.quorumHandle !== h) return;
        if (ev.quorate !== n.quorate) {
          n.logs.push(`[status] notice: ${ev.quorate ? "node has quorum" : "node lost quorum"}`);
        }
        n.quorate = ev.quorate;
      },
      onTransportLost: () => {
        if (n.quorumHandle !== h) return;
        if (n.quorate) n.logs.push("[status] notice: node lost quorum");
        n.quorate = false;
        if (typeof h !== "string") h.finalize();
        n.quorumHandle = null;
        n.quorumWanted = true;
        this.scheduleQuorum(n);
      },
    });
    if (h === "library") {
      n.logs.push("[quorum] crit: quorum_initialize failed: 2 (failed to connect to corosync)");
      return; // onRingChange retries
    }
    n.quorumHandle = h;
    n.quorumWanted = false;
    h.trackStart();
  }

  private initCpg(n: SimNode): void {
    n.lastCpgAttempt = this.clock(n.id);
    if (!n.cpg) {
      const h = n.process!.cpgInitialize({
        onConfchg: (ev) => {
          if (n.cpg !== h) return;
          n.driver.confchg(ev.members, ev.left, ev.joined);
          this.kick(n);
        },
        onDeliver: (ev) => {
          if (n.cpg !== h) return;
          n.driver.deliver({ nodeid: ev.nodeid, pid: ev.pid }, ev.bytes);
          this.kick(n);
        },
        onTransportLost: () => {
          if (n.cpg !== h) return;
          n.logs.push("[dcdb] crit: cpg_dispatch failed: 2");
          n.driver.finalise();
          if (typeof h !== "string") h.finalize();
          n.cpg = null;
          n.joinTimer?.();
          n.joinTimer = null;
          if (n.core.mode === Mode.ERROR || n.core.mode === Mode.VERSION_ERROR) {
            n.dead = true;
            return;
          }
          n.cpgWanted = true;
          this.scheduleCpg(n);
        },
      });
      if (h === "library") {
        n.logs.push("[dcdb] crit: cpg_initialize failed: 2 (failed to connect to corosync)");
        return; // onRingChange retries once corosync is back
      }
      n.cpg = h;
    }
    n.cpgWanted = false;
    n.driver.initialise(n.id, n.process!.pid);
    if (n.core.mode === Mode.ERROR || n.core.mode === Mode.VERSION_ERROR) {
      n.dead = true;
      return;
    }
    this.join(n, 0);
  }

  private join(n: SimNode, attempt: number): void {
    const h = n.cpg;
    if (!h) return;
    const r = h.join(`${DCDB_GROUP}\0`);
    if (r === "ok") return;
    if (r === "try_again") {
      if ((attempt + 1) % 10 === 0) n.logs.push(`[dcdb] notice: cpg_join retry ${attempt + 1}`);
      const gen = n.generation;
      n.joinTimer = this.bus.schedule(100, () => {
        n.joinTimer = null;
        if (gen === n.generation && n.cpg === h) this.join(n, attempt + 1);
      });
      return;
    }
    n.logs.push(`[dcdb] crit: cpg_join failed: ${CS_ERROR[r]}`);
    n.driver.finalise();
    h.finalize();
    n.cpg = null;
    n.cpgWanted = true;
    this.scheduleCpg(n);
  }

  /** Schedules an outbox retry in 100 ms when the driver has something left. */
  kick(n: SimNode): void {
    if (!n.alive || n.flushTimer || n.driver.outboxLength === 0) return;
    const gen = n.generation;
    n.flushTimer = this.bus.schedule(100, () => {
      n.flushTimer = null;
      if (gen !== n.generation) return;
      n.driver.flush();
      this.kick(n);
    });
  }
}

/**
 * Test harness for the DFSM core: a small replicated-log application and a hand-driven CPG
 * "bus" giving total order, self delivery and confchgs at a position of the stream.
 */
import { Dfsm } from "../../src/dfsm/dfsm.ts";
import type {
  DeliverResult,
  DfsmApp,
  DfsmConfig,
  DfsmContext,
  DfsmEffect,
  DfsmEvent,
  MemberId,
  SendOutcome,
} from "../../src/dfsm/types.ts";

export const DCDB: DfsmConfig = {
  groupName: "pve_dcdb_v1",
  protocolVersion: 1,
  domain: "dcdb",
  verifyPeriod: 3600,
};
export const KV: DfsmConfig = { groupName: "pve_kvstore_v1", protocolVersion: 0, domain: "status" };

/** Subtypes the fake application treats specially. */
export const REJECT = 99;
export const STORAGE_ERROR = 98;

const te = new TextEncoder();
const td = new TextDecoder();

/**
 * A replicated log: every delivered message appends `<nodeid>:<text>`; the state is the log
 * as JSON. Leader (dcdb style): longest log, ties to the first in member order; synced = equal
 * to the leader's. The leader sends one UPDATE per entry, then UPDATE_COMPLETE. With
 * `everyoneSynced` it behaves like kvstore: all synced, no updates.
 */
export class LogApp implements DfsmApp {
  log: string[] = [];
  calls: string[] = [];
  collected: string[] | undefined;
  syncedHook = 0;
  /** Extra checksum salt: makes this member's checksum differ. */
  salt = 0;
  constructor(readonly self: () => MemberId, readonly everyoneSynced = false) {}

  deliver(
    ctx: DfsmContext,
    from: MemberId,
    subtype: number,
    _time: number,
    payload: Uint8Array,
  ): DeliverResult {
    const text = td.decode(payload);
    this.calls.push(`deliver ${from.nodeid}:${text}`);
    if (subtype === REJECT) {
      ctx.log("crit", "received write while not quorate - trigger resync");
      return { ret: "reject" };
    }
    this.log.push(`${from.nodeid}:${text}`);
    if (subtype === STORAGE_ERROR) return { ret: "error", result: -5 };
    return { ret: "ok", result: this.log.length };
  }
  getState(): Uint8Array | undefined {
    this.calls.push("getState");
    return te.encode(JSON.stringify(this.log));
  }
  processStates(
    ctx: DfsmContext,
    states: { member: MemberId; state: Uint8Array }[],
  ): { synced: MemberId[] } | "error" {
    this.calls.push(`processStates ${states.length}`);
    if (this.everyoneSynced) return { synced: states.map((s) => s.member) };
    const logs = states.map((s) => JSON.parse(td.decode(s.state)) as string[]);
    let leader = 0;
    for (let i = 1; i < logs.length; i++) if (logs[i].length > logs[leader].length) leader = i;
    const lj = JSON.stringify(logs[leader]);
    const synced = states.filter((_, i) => JSON.stringify(logs[i]) === lj).map((s) => s.member);
    const me = this.self();
    const lm = states[leader].member;
    if (lm.nodeid === me.nodeid && lm.pid === me.pid) {
      for (const e of this.log) ctx.mcastUpdate(te.encode(e));
      ctx.mcastUpdateComplete();
    }
    return { synced };
  }
  processUpdate(_ctx: DfsmContext, _from: MemberId, payload: Uint8Array): boolean {
    (this.collected ??= []).push(td.decode(payload));
    return true;
  }
  commit(): boolean {
    this.calls.push(`commit ${this.collected?.length ?? 0}`);
    this.log = this.collected ?? [];
    this.collected = undefined;
    return true;
  }
  cleanup(): void {
    this.collected = undefined;
  }
  checksum(): Uint8Array {
    const out = new Uint8Array(32);
    const s = JSON.stringify(this.log);
    let h = 2166136261 ^ this.salt;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
    for (let i = 0; i < 32; i++) {
      h = Math.imul(h ^ i, 16777619) >>> 0;
      out[i] = h & 0xff;
    }
    return out;
  }
  onSynced(): void {
    this.syncedHook++;
  }
}

export interface Node {
  name: string;
  id: MemberId;
  core: Dfsm;
  app: LogApp;
  effects: DfsmEffect[];
  completions: Map<number, SendOutcome>;
  /** sendFailed injection: the next `failSends` mcasts fail with this error. */
  failSends: number;
  failError: number;
}

type Item =
  | { kind: "msg"; from: Node; bytes: Uint8Array }
  | { kind: "join"; node: Node }
  | { kind: "leave"; nodes: Node[]; notify: boolean };

/** A simulated CPG bus for one group. */
export class Bus {
  nodes: Node[] = [];
  members: Node[] = [];
  queue: Item[] = [];
  now = 1_800_000_000;
  constructor(readonly config: DfsmConfig = DCDB, readonly everyoneSynced = false) {}

  add(nodeid: number, pid = 100 + nodeid, app?: LogApp): Node {
    const id = { nodeid, pid };
    const a = app ?? new LogApp(() => id, this.everyoneSynced);
    const node: Node = {
      name: `${nodeid}/${pid}`,
      id,
      core: new Dfsm(this.config, a),
      app: a,
      effects: [],
      completions: new Map(),
      failSends: 0,
      failError: 6,
    };
    this.nodes.push(node);
    this.step(node, { type: "initialised", now: this.now, nodeid, pid });
    return node;
  }

  /** Feeds an event to a node and executes its effects. */
  step(node: Node, ev: DfsmEvent): DfsmEffect[] {
    const eff = node.core.step(ev);
    node.effects.push(...eff);
    for (const e of eff) {
      if (e.type === "mcast") {
        if (node.failSends > 0) {
          node.failSends--;
          this.step(node, { type: "sendFailed", now: this.now, seq: e.seq, error: node.failError });
        } else this.queue.push({ kind: "msg", from: node, bytes: e.bytes });
      } else if (e.type === "complete") node.completions.set(e.ticket, e.outcome);
      else if (e.type === "leaveGroup") {
        this.queue.push({ kind: "leave", nodes: [node], notify: true });
      }
    }
    return eff;
  }

  join(node: Node): void {
    this.queue.push({ kind: "join", node });
  }
  /** Crash: the others see them leave, the crashed nodes see nothing. */
  crash(...nodes: Node[]): void {
    this.queue.push({ kind: "leave", nodes, notify: false });
  }
  send(node: Node, text: string, ticket?: number, subtype = 1): DfsmEffect[] {
    return this.step(node, {
      type: "send",
      now: this.now,
      subtype,
      payload: te.encode(text),
      ticket,
      preset: -16,
    });
  }
  timer(node: Node): DfsmEffect[] {
    return this.step(node, { type: "timer", now: this.now });
  }
  /** Re-initialises a node (after serviceDown) and joins again. */
  reinit(node: Node): void {
    this.step(node, {
      type: "initialised",
      now: this.now,
      nodeid: node.id.nodeid,
      pid: node.id.pid,
    });
    this.join(node);
  }

  /** Processes one queued item; false when the queue is empty. */
  deliverOne(): boolean {
    const it = this.queue.shift();
    if (!it) return false;
    const ids = (ns: Node[]) => ns.map((n) => ({ ...n.id }));
    if (it.kind === "msg") {
      if (!this.members.includes(it.from)) return true; // not in this configuration
      for (const n of [...this.members]) {
        this.step(n, {
          type: "delivered",
          now: this.now,
          from: { ...it.from.id },
          bytes: it.bytes,
        });
      }
    } else if (it.kind === "join") {
      if (this.members.includes(it.node)) return true;
      this.members = [...this.members, it.node];
      const ev = { members: ids(this.members), left: [], joined: ids([it.node]) };
      for (const n of [...this.members]) this.step(n, { type: "confchg", now: this.now, ...ev });
    } else {
      const gone = it.nodes.filter((n) => this.members.includes(n));
      if (gone.length === 0) return true;
      this.members = this.members.filter((n) => !gone.includes(n));
      const ev = { members: ids(this.members), left: ids(gone), joined: [] };
      const told = it.notify ? [...this.members, ...gone] : [...this.members];
      for (const n of told) this.step(n, { type: "confchg", now: this.now, ...ev });
    }
    return true;
  }

  run(max = 100_000): void {
    for (let i = 0; i < max && this.deliverOne(); i++);
    if (this.queue.length) throw new Error("bus did not settle");
  }
}

/** Log texts of a node (`level text`), optionally only those matching `re`. */
export function logs(node: Node, re?: RegExp): string[] {
  return node.effects.filter((e) => e.type === "log").map((e) =>
    e.type === "log" ? `${e.level} ${e.text}` : ""
  ).filter((t) => !re || re.test(t));
}

export function mcasts(node: Node): Uint8Array[] {
  return node.effects.flatMap((e) => e.type === "mcast" ? [e.bytes] : []);
}

export function clearEffects(...nodes: Node[]): void {
  for (const n of nodes) n.effects = [];
}

/**
 * A toy CPG application for bus tests: {@linkcode Recorder} opens handles that record every
 * event they get (confchgs, deliveries, transport loss), and {@linkcode checkCpgInvariants}
 * checks the guarantees of cluster spec 2.2 over everything recorded.
 *
 * @example
 * ```ts
 * import { CpgBus } from "./cpg_bus.ts";
 * import { checkCpgInvariants, Recorder } from "./cpg_recorder.ts";
 * const bus = new CpgBus({ seed: 7 });
 * bus.addNodes(3);
 * const rec = new Recorder(bus);
 * const a = rec.open(bus.spawn(1));
 * if (a) a.join("g");
 * bus.runUntilQuiet();
 * const errors = checkCpgInvariants(rec);
 * ```
 * @module
 */

import {
  type CpgAddress,
  type CpgBus,
  type CpgHandle,
  CpgReason,
  type CsResult,
  type SimProcess,
} from "./cpg_bus.ts";

/** One recorded event of a handle. */
export type Rec =
  | {
    kind: "confchg";
    group: string;
    viewId: number;
    members: string[];
    left: CpgAddress[];
    joined: CpgAddress[];
  }
  | { kind: "deliver"; group: string; from: string; id: string }
  | { kind: "lost" };

const dec = new TextDecoder();
const enc = new TextEncoder();

/** "nodeid/pid" */
export function pidKey(a: { nodeid: number; pid: number }): string {
  return `${a.nodeid}/${a.pid}`;
}

/** A recording handle and what its application did with it. */
export class RecHandle {
  readonly log: Rec[] = [];
  /** Ids of the messages `mcast` accepted ("ok"), in send order. */
  readonly sent: string[] = [];
  /** The application's view: join accepted and no leave asked since (reset by transport loss). */
  joinedByApp = false;
  group: string | null = null;
  lost = false;
  private seq = 0;

  constructor(readonly handle: CpgHandle, readonly index: number) {}

  get who(): string {
    return pidKey(this.handle);
  }

  /** Whether the handle can still receive everything (not closed, not lost, process alive). */
  get healthy(): boolean {
    return !this.handle.closed && !this.handle.lost && this.handle.process.alive;
  }

  /** `join`; remembers the group when accepted. */
  join(group: string): CsResult {
    const r = this.handle.join(group);
    if (r === "ok") {
      this.joinedByApp = true;
      this.group = group;
    }
    return r;
  }

  /** `leave`. */
  leave(): CsResult {
    const r = this.handle.leave();
    if (r === "ok") this.joinedByApp = false;
    return r;
  }

  /** `mcast` of a unique message id ("group:nodeid/pid:seq"); returns the result and the id. */
  mcast(): { result: CsResult; id: string } {
    const id = `${this.group ?? "-"}:${this.who}:h${this.index}.${this.seq++}`;
    const result = this.handle.mcast(enc.encode(id));
    if (result === "ok") this.sent.push(id);
    return { result, id };
  }
}

/** Opens recording handles on a bus and keeps them all. */
export class Recorder {
  readonly handles: RecHandle[] = [];
  constructor(readonly bus: CpgBus) {}

  /** `cpg_initialize` on a process; undefined when corosync is down there. */
  open(p: SimProcess): RecHandle | undefined {
    // deno-lint-ignore prefer-const
    let rec: RecHandle | undefined;
    const h = p.cpgInitialize({
      onConfchg: (c) =>
        rec!.log.push({
          kind: "confchg",
          group: dec.decode(c.group),
          viewId: c.viewId,
          members: c.members.map(pidKey),
          left: c.left,
          joined: c.joined,
        }),
      onDeliver: (m) => {
        const id = dec.decode(m.bytes);
        rec!.log.push({ kind: "deliver", group: dec.decode(m.group), from: pidKey(m), id });
      },
      onTransportLost: () => {
        rec!.log.push({ kind: "lost" });
        rec!.lost = true;
        rec!.joinedByApp = false;
      },
    });
    if (typeof h === "string") return undefined;
    rec = new RecHandle(h, this.handles.length);
    this.handles.push(rec);
    return rec;
  }
}

function sameList(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Check every recorded log against the CPG guarantees; returns the violations (empty: fine).
 * Call it when the bus is quiet. `finalCheck`: every node is up and connected, so all healthy
 * joined handles of a group must agree on the member list, which must be exactly them.
 */
export function checkCpgInvariants(rec: Recorder, finalCheck = false): string[] {
  const errors: string[] = [];
  const err = (s: string) => {
    if (errors.length < 20) errors.push(s);
  };
  const confchgById = new Map<number, Extract<Rec, { kind: "confchg" }>>();
  // per handle: message id -> position; segments (prev view, messages, next view)
  const positions: Map<string, number>[] = [];
  interface Seg {
    who: string;
    prev: number;
    next: number | undefined;
    msgs: string[];
  }
  const segs: Seg[] = [];

  for (const rh of rec.handles) {
    const who = rh.who;
    const pos = new Map<string, number>();
    positions.push(pos);
    let members: string[] | null = null; // null: not a member
    let seg: Seg | null = null;
    const lastFrom = new Map<string, number>(); // per-sender FIFO: last seq seen
    rh.log.forEach((e, i) => {
      const at = `${who} event ${i}`;
      if (e.kind === "lost") {
        if (i !== rh.log.length - 1) err(`${at}: events after transport loss`);
        return;
      }
      if (e.kind === "deliver") {
        if (members === null) return err(`${at}: delivery while not a member`);
        if (!members.includes(e.from)) err(`${at}: sender ${e.from} not in the configuration`);
        if (!e.id.startsWith(`${e.group}:${e.from}:`)) err(`${at}: message ${e.id} mislabelled`);
        if (pos.has(e.id)) err(`${at}: ${e.id} delivered twice`);
        pos.set(e.id, pos.size);
        const [hp, n] = e.id.split(":")[2].split(".");
        const sender = `${e.from}:${hp}`;
        const s = Number(n);
        if ((lastFrom.get(sender) ?? -1) >= s) err(`${at}: ${e.id} out of sender order`);
        lastFrom.set(sender, s);
        seg!.msgs.push(e.id);
        return;
      }
      // confchg
      const prevId = confchgById.get(e.viewId);
      if (prevId) {
        if (
          !sameList(prevId.members, e.members) ||
          !sameList(prevId.left.map(pidKey), e.left.map(pidKey)) ||
          !sameList(prevId.joined.map(pidKey), e.joined.map(pidKey))
        ) err(`${at}: confchg #${e.viewId} differs between receivers`);
      } else confchgById.set(e.viewId, e);
      const sorted = [...e.members].sort((a, b) => {
        const [an, ap] = a.split("/").map(Number);
        const [bn, bp] = b.split("/").map(Number);
        return an - bn || ap - bp;
      });
      if (!sameList(sorted, e.members)) err(`${at}: member list not in (nodeid, pid) order`);
      if (new Set(e.members).size !== e.members.length) err(`${at}: duplicate members`);
      if (e.left.length > 0 && e.joined.length > 0) err(`${at}: confchg both joins and leaves`);
      if (e.joined.length > 1) err(`${at}: ${e.joined.length} processes joined in one confchg`);
      for (const l of e.left) {
        if (![CpgReason.LEAVE, CpgReason.NODEDOWN, CpgReason.PROCDOWN].includes(l.reason as 2)) {
          err(`${at}: left reason ${l.reason}`);
        }
        if (l.reason !== CpgReason.NODEDOWN && e.left.length > 1) {
          err(`${at}: ${e.left.length} left with reason ${l.reason}`);
        }
      }
      for (const j of e.joined) {
        if (j.reason !== CpgReason.JOIN && j.reason !== CpgReason.NODEUP) {
          err(`${at}: joined reason ${j.reason}`);
        }
      }
      const selfLeft = e.left.some((l) => pidKey(l) === who);
      if (members === null) {
        // must be our own join
        const j = e.joined[0];
        if (!j || pidKey(j) !== who || j.reason !== CpgReason.JOIN) {
          err(`${at}: first confchg is not the own join`);
        }
        if (!e.members.includes(who)) err(`${at}: joiner not in members`);
      } else {
        const expect = members.filter((m) => !e.left.some((l) => pidKey(l) === m));
        for (const l of e.left) {
          if (!members.includes(pidKey(l))) err(`${at}: ${pidKey(l)} left but was no member`);
        }
        for (const j of e.joined) {
          if (members.includes(pidKey(j))) err(`${at}: ${pidKey(j)} joined twice`);
          expect.push(pidKey(j));
        }
        expect.sort((a, b) => {
          const [an, ap] = a.split("/").map(Number);
          const [bn, bp] = b.split("/").map(Number);
          return an - bn || ap - bp;
        });
        if (!sameList(expect, e.members)) {
          err(`${at}: members [${e.members}] != previous - left + joined [${expect}]`);
        }
      }
      if (seg) {
        seg.next = e.viewId;
        segs.push(seg);
      }
      if (selfLeft) {
        const l = e.left.find((x) => pidKey(x) === who)!;
        if (l.reason !== CpgReason.LEAVE) err(`${at}: own leave with reason ${l.reason}`);
        if (e.members.includes(who)) err(`${at}: leaver still in members`);
        members = null;
        seg = null;
      } else {
        if (!e.members.includes(who)) err(`${at}: self not in members`);
        members = e.members;
        seg = { who, prev: e.viewId, next: undefined, msgs: [] };
      }
    });
    if (seg) segs.push(seg);

    // self delivery
    if (rh.healthy) {
      for (const id of rh.sent) if (!pos.has(id)) err(`${who}: own message ${id} not delivered`);
    }
  }

  // total order: any two handles deliver their common messages in the same order
  for (let a = 0; a < positions.length; a++) {
    for (let b = a + 1; b < positions.length; b++) {
      const pa = positions[a], pb = positions[b];
      let last = -1;
      for (const [id] of [...pb].sort((x, y) => x[1] - y[1])) {
        const p = pa.get(id);
        if (p === undefined) continue;
        if (p < last) {
          err(`total order: ${rec.handles[a].who} and ${rec.handles[b].who} disagree at ${id}`);
          break;
        }
        last = p;
      }
    }
  }

  // virtual synchrony: same (confchg, next confchg) => same messages (a handle that died in
  // between may have missed the end, and may have been split off first: total order covers it)
  const byPrev = new Map<number, Seg[]>();
  for (const s of segs) byPrev.set(s.prev, [...(byPrev.get(s.prev) ?? []), s]);
  for (const [prev, list] of byPrev) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const x = list[i], y = list[j];
        if (x.next !== undefined && x.next === y.next) {
          if (!sameList(x.msgs, y.msgs)) {
            err(`virtual synchrony: ${x.who} and ${y.who} differ between #${prev} and #${x.next}`);
          }
        }
      }
    }
  }

  if (finalCheck) {
    const groups = new Map<string, RecHandle[]>();
    for (const rh of rec.handles) {
      if (rh.healthy && rh.joinedByApp && rh.group) {
        groups.set(rh.group, [...(groups.get(rh.group) ?? []), rh]);
      }
    }
    for (const [g, list] of groups) {
      const want = list.map((r) => r.who).sort((a, b) => {
        const [an, ap] = a.split("/").map(Number);
        const [bn, bp] = b.split("/").map(Number);
        return an - bn || ap - bp;
      });
      for (const rh of list) {
        const last = rh.log.findLast((e) => e.kind === "confchg");
        const have = last?.kind === "confchg" ? last.members : [];
        if (!sameList(have, want)) {
          err(`final: ${rh.who} in ${g} sees [${have}], joined handles are [${want}]`);
        }
      }
    }
  }
  return errors;
}

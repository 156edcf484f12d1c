/**
 * The capture's story replayed through two cores per group (spec 9): node1 (10701) alone, node2
 * (10702) joins, normal traffic, node2 stops, node2 (10829) rejoins and is updated. Scripted
 * applications return the captured STATE/UPDATE/kv payloads; every multicast of every core must
 * equal the captured bytes (header times, counts, epochs included) and the group log lines must
 * equal the C daemon's, line for line.
 */
import { assertEquals } from "./assert.ts";
import { Bus, DCDB, KV, type LogApp, type Node } from "./dfsm_harness.ts";
import { type CaptureLine, readCapture } from "./dfsm_fixtures.ts";
import { decodeMessage, isNormal, MsgType } from "../../src/dfsm/codec.ts";
import type {
  DeliverResult,
  DfsmApp,
  DfsmContext,
  DfsmEffect,
  MemberId,
} from "../../src/dfsm/types.ts";

function msgOf(l: CaptureLine) {
  const r = decodeMessage(l.bytes);
  if (!r.ok) throw new Error("decode");
  return r.msg;
}

/** Captured lines of one node and group with the given message type. */
function lines(node: 1 | 2, group: "dcdb" | "kvstore", type?: number): CaptureLine[] {
  return readCapture(node).filter((l) =>
    l.group === group && (type === undefined || msgOf(l).type === type)
  );
}

/** Plays a C node's application part from the capture. */
class ScriptApp implements DfsmApp {
  updates = 0;
  constructor(
    readonly self: MemberId,
    readonly kv: boolean,
    readonly states: Uint8Array[],
    /** dcdb leader: the UPDATE payloads of each round. */
    readonly rounds: Uint8Array[][] = [],
    /** kvstore: the `nodeip` update sent each time the group enters SYNCED. */
    readonly syncedPayloads: Uint8Array[] = [],
  ) {}
  deliver(_c: DfsmContext, _f: MemberId, _s: number, _t: number, _p: Uint8Array): DeliverResult {
    return { ret: "ok", result: 0 };
  }
  getState(): Uint8Array | undefined {
    return this.states.shift();
  }
  processStates(
    ctx: DfsmContext,
    states: { member: MemberId; state: Uint8Array }[],
  ): { synced: MemberId[] } | "error" {
    if (this.kv) return { synced: states.map((s) => s.member) };
    // the capture's leader is always node1, the first member
    const leader = states[0];
    const eq = (a: Uint8Array, b: Uint8Array) =>
      a.length === b.length && a.every((v, i) => v === b[i]);
    const synced = states.filter((s) => eq(s.state, leader.state)).map((s) => s.member);
    const fmt = (m: MemberId) => `${m.nodeid}/${m.pid}`;
    ctx.log("notice", `leader is ${fmt(leader.member)}`);
    ctx.log("notice", `synced members: ${synced.map(fmt).join(", ")}`);
    if (leader.member.nodeid === this.self.nodeid && leader.member.pid === this.self.pid) {
      const ups = this.rounds.shift() ?? [];
      ctx.log("notice", "start sending inode updates");
      for (const u of ups) ctx.mcastUpdate(u);
      ctx.log("notice", `sent all (${ups.length}) updates`);
      ctx.mcastUpdateComplete();
    }
    return { synced };
  }
  processUpdate(): boolean {
    this.updates++;
    return true;
  }
  commit(ctx: DfsmContext): boolean {
    ctx.log("notice", `update complete - trying to commit (got ${this.updates} inode updates)`);
    return true;
  }
  cleanup(): void {
    this.updates = 0;
  }
  onSynced(ctx: DfsmContext): void {
    const p = this.syncedPayloads.shift();
    if (p) ctx.mcastNormal(1, p);
  }
}

const payload = (l: CaptureLine) => msgOf(l).payload;

function groupLines(node: 1 | 2, domain: string, from = 0, to = Infinity): string[] {
  return Deno.readTextFileSync(
    new URL(`../fixtures/c-wire/node${node}-daemon.log`, import.meta.url),
  )
    .split("\n").slice(from, to).filter((l) => l.startsWith(`[${domain}] `))
    .filter((l) => !/update cluster info|node has quorum/.test(l)) // quorum/cmap, not DFSM
    .map((l) => l.slice(domain.length + 3).replace(/^(\w+): /, "$1 "));
}

function ownLogs(n: Node): string[] {
  return n.effects.flatMap((e: DfsmEffect) =>
    e.type === "log" && e.level !== "debug" ? [`${e.level} ${e.text}`] : []
  );
}

function ownMcasts(...ns: Node[]): Uint8Array[] {
  return ns.flatMap((n) => n.effects.flatMap((e) => e.type === "mcast" ? [e.bytes] : []));
}

Deno.test("the capture replayed through two cores: every multicast byte-identical, every group log line equal", () => {
  for (const group of ["dcdb", "kvstore"] as const) {
    const kv = group === "kvstore";
    const bus = new Bus(kv ? KV : DCDB);
    const n1id = { nodeid: 1, pid: 10701 };
    const n2aid = { nodeid: 2, pid: 10702 };
    const n2bid = { nodeid: 2, pid: 10829 };
    const states1 = lines(1, group, MsgType.STATE).map(payload);
    const states2 = lines(2, group, MsgType.STATE).map(payload);
    const ups = lines(1, group, MsgType.UPDATE).map(payload);
    const kv1 = kv ? lines(1, group, MsgType.NORMAL).map(payload) : [];
    const kv2 = kv ? lines(2, group, MsgType.NORMAL).map(payload) : [];
    const app1 = new ScriptApp(n1id, kv, states1, [[], ups], kv1);
    const app2a = new ScriptApp(n2aid, kv, states2.slice(0, 1), [], kv2.slice(0, 1));
    const app2b = new ScriptApp(n2bid, kv, states2.slice(1), [], kv2.slice(1));

    bus.now = 1795561396.0; // node1 starts (its kvstore join is in the capture's second)
    const n1 = bus.add(1, 10701, app1 as unknown as LogApp);
    bus.join(n1);
    bus.deliverOne(); // alone: SYNCED; kvstore's first nodeip update is still on the bus
    bus.now = 1795561396.684;
    const n2a = bus.add(2, 10702, app2a as unknown as LogApp);
    bus.queue.unshift({ kind: "join", node: n2a }); // the update is delivered after this confchg
    bus.run();
    if (!kv) {
      // the database traffic of both nodes, in send order
      const normals = [...lines(1, "dcdb", 0), ...lines(2, "dcdb", 0)]
        .filter((l) => l.time < 1795561420.443).sort((a, b) => a.time - b.time);
      for (const l of normals) {
        bus.now = l.time;
        const m = msgOf(l);
        bus.step(l.node === 1 ? n1 : n2a, {
          type: "send",
          now: l.time,
          subtype: m.subtype,
          payload: m.payload,
          ticket: l.line,
        });
        bus.run();
      }
    }
    bus.now = 1795561420.443; // node2 stopped
    bus.crash(n2a);
    bus.run();
    if (!kv) {
      for (const l of lines(1, "dcdb", 0).filter((l) => l.time > 1795561420.443)) {
        bus.now = l.time;
        const m = msgOf(l);
        bus.step(n1, { type: "send", now: l.time, subtype: m.subtype, payload: m.payload });
        bus.run();
      }
    }
    bus.now = 1795561423.096; // node2 restarted
    const n2b = bus.add(2, 10829, app2b as unknown as LogApp);
    bus.join(n2b);
    bus.run();
    bus.crash(n1); // node1's daemon exits
    bus.run();

    const cap1 = readCapture(1).filter((l) => l.group === group).map((l) => l.bytes);
    const cap2 = readCapture(2).filter((l) => l.group === group).map((l) => l.bytes);
    assertEquals(ownMcasts(n1).length, cap1.length, `${group} node1 count`);
    ownMcasts(n1).forEach((b, i) => assertEquals(b, cap1[i], `${group} node1 mcast ${i + 1}`));
    assertEquals(ownMcasts(n2a, n2b).length, cap2.length, `${group} node2 count`);
    ownMcasts(n2a, n2b).forEach((b, i) => assertEquals(b, cap2[i], `${group} node2 mcast ${i}`));

    const domain = kv ? "status" : "dcdb";
    assertEquals(ownLogs(n1), groupLines(1, domain), `${group} node1 log`);
    assertEquals(ownLogs(n2a), groupLines(2, domain, 0, 18), `${group} node2 (10702) log`);
    assertEquals(ownLogs(n2b), groupLines(2, domain, 18), `${group} node2 (10829) log`);
    // every waiting sender got its own result
    if (!kv) {
      const nn = [...n1.completions.values(), ...n2a.completions.values()];
      assertEquals(nn.length, lines(1, "dcdb", 0).length - 6 + 3);
      for (const o of nn) assertEquals(o, { processed: true, result: 0 });
      assertEquals(isNormal(msgOf(lines(1, "dcdb", 0)[0])), true);
    }
  }
});

/** The simulated quorum service: votes, partitions, corosync dying, notification order. */

import { assert, assertEquals } from "../unit/assert.ts";
import { CpgBus, type SimProcess } from "./cpg_bus.ts";
import { type QuorumHandle, SimQuorum } from "./quorum.ts";

function track(q: SimQuorum, p: SimProcess): { h: QuorumHandle; log: string[] } {
  const log: string[] = [];
  const h = q.initialize(p, {
    onNotify: (n) => log.push(`${n.quorate ? "quorate" : "inquorate"} [${n.members}]`),
    onTransportLost: () => log.push("lost"),
  });
  if (typeof h === "string") throw new Error(h);
  assertEquals(h.trackStart(), "ok");
  return { h, log };
}

function setup(n: number, opts = {}) {
  const bus = new CpgBus({ seed: 3 });
  bus.addNodes(n);
  const q = new SimQuorum(bus, opts);
  const t = bus.nodeIds().map((id) => track(q, bus.spawn(id)));
  bus.runUntilQuiet();
  return { bus, q, t };
}

Deno.test("trackStart notifies the current state at once", () => {
  const { t } = setup(3);
  for (const x of t) assertEquals(x.log, ["quorate [1,2,3]"]);
});

Deno.test("partition 2+1: the minority loses quorum, the majority keeps it; heal restores", () => {
  const { bus, q, t } = setup(3);
  bus.partition([[1, 2], [3]]);
  bus.runUntilQuiet();
  assertEquals(t[0].log.at(-1), "quorate [1,2]");
  assertEquals(t[2].log.at(-1), "inquorate [3]");
  assertEquals(q.getQuorate(3), false);
  assertEquals(t[2].h.getQuorate(), false);
  bus.heal();
  bus.runUntilQuiet();
  for (const x of t) assertEquals(x.log.at(-1), "quorate [1,2,3]");
});

Deno.test("more than half: 2 of 4 is not quorate, 3 of 5 is; 1 of 2 is not", () => {
  const four = setup(4);
  four.bus.partition([[1, 2], [3, 4]]);
  four.bus.runUntilQuiet();
  for (const x of four.t) assert(x.log.at(-1)!.startsWith("inquorate"));
  const five = setup(5);
  five.bus.partition([[1, 2, 3], [4, 5]]);
  five.bus.runUntilQuiet();
  assertEquals(five.t.map((x) => x.log.at(-1)!.split(" ")[0]), [
    "quorate",
    "quorate",
    "quorate",
    "inquorate",
    "inquorate",
  ]);
  const two = setup(2);
  two.bus.stopCorosync(2);
  two.bus.runUntilQuiet();
  assertEquals(two.t[0].log.at(-1), "inquorate [1]");
});

Deno.test("votes and expected votes decide; changing them notifies", () => {
  const { bus, q, t } = setup(3, { votes: { 1: 3 } }); // 5 expected
  bus.partition([[1], [2, 3]]);
  bus.runUntilQuiet();
  assertEquals(t[0].log.at(-1), "quorate [1]");
  assertEquals(t[1].log.at(-1), "inquorate [2,3]");
  q.setExpectedVotes(3); // both sides quorate: split brain (spec 13, test 29)
  bus.runUntilQuiet();
  assertEquals(t[1].log.at(-1), "quorate [2,3]");
  assertEquals(q.getQuorate(1), true);
});

Deno.test("corosync dying: the handle loses its transport, calls say library; restart works", () => {
  const { bus, q, t } = setup(3);
  const p1 = bus.processesOf(1)[0];
  bus.stopCorosync(1);
  assertEquals(q.getQuorate(1), "library");
  assertEquals(t[0].h.getQuorate(), "library");
  assertEquals(t[0].h.trackStart(), "library");
  assertEquals(q.initialize(p1, {}), "library");
  bus.runUntilQuiet();
  assertEquals(t[0].log.at(-1), "lost");
  assertEquals(t[1].log.at(-1), "quorate [2,3]");
  assertEquals(t[0].h.finalize(), "ok");
  bus.startCorosync(1);
  bus.runUntilQuiet();
  const again = track(q, p1);
  bus.runUntilQuiet();
  assertEquals(again.log, ["quorate [1,2,3]"]);
  assertEquals(t[1].log.at(-1), "quorate [1,2,3]");
});

Deno.test("quorum notifications and confchgs arrive in a seeded order, either way round", () => {
  const orders = new Set<string>();
  for (let seed = 1; seed <= 30; seed++) {
    const bus = new CpgBus({ seed });
    bus.addNodes(3);
    const q = new SimQuorum(bus);
    const p = bus.spawn(3);
    const seen: string[] = [];
    const qh = q.initialize(p, { onNotify: (n) => seen.push(n.quorate ? "q1" : "q0") });
    const ch = p.cpgInitialize({ onConfchg: (c) => seen.push(`c${c.members.length}`) });
    if (typeof qh === "string" || typeof ch === "string") throw new Error("init");
    qh.trackStart();
    ch.join("g");
    for (const n of [1, 2]) {
      const other = bus.spawn(n).cpgInitialize({});
      if (typeof other !== "string") other.join("g");
    }
    bus.runUntilQuiet();
    seen.length = 0;
    bus.partition([[1, 2], [3]]);
    bus.runUntilQuiet();
    orders.add(seen.join(","));
  }
  assertEquals(orders, new Set(["q0,c1", "c1,q0"]));
});

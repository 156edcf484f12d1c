/**
 * Fuzz: 20,000 (with `PMXCFS_SOAK=1`: 1,000,000) random and mutated messages (the C capture's lines with flipped bytes,
 * truncations, extensions, other types and versions) delivered to a core in every mode. The core
 * never throws; malformed input is logged and dropped, or leads to LEAVE / VERSION_ERROR as
 * spec 3.5 and 4.6 say.
 */
import { assert, assertEquals } from "./assert.ts";
import { Bus, type Node } from "./dfsm_harness.ts";
import { allCaptureLines } from "./dfsm_fixtures.ts";
import { prng } from "./prng.ts";
import { Mode } from "../../src/dfsm/types.ts";
import type { DfsmEffect, MemberId } from "../../src/dfsm/types.ts";

const SEED = Number(Deno.env.get("DFSM_FUZZ_SEED") ?? 20261125);
/** `PMXCFS_SOAK=1` (`deno task soak`) runs the long version. */
const TOTAL = Deno.env.get("PMXCFS_SOAK") === "1" ? 1_000_000 : 20_000;

interface Setup {
  bus: Bus;
  target: Node;
}

/** Builds a core in the wanted mode. */
function setup(mode: Mode): Setup {
  const bus = new Bus();
  if (mode === Mode.START) {
    // initialised, and a confchg that does not list us yet: member table, still START
    const t = bus.add(1);
    bus.step(t, {
      type: "confchg",
      now: bus.now,
      members: [{ nodeid: 2, pid: 102 }],
      left: [],
      joined: [{ nodeid: 2, pid: 102 }],
    });
    return { bus, target: t };
  }
  const a = bus.add(1);
  bus.join(a);
  bus.run();
  if (mode === Mode.SYNCED) {
    const b = bus.add(2);
    bus.join(b);
    bus.run();
    return { bus, target: a };
  }
  bus.send(a, "x");
  bus.run();
  const b = bus.add(2);
  bus.join(b);
  if (mode === Mode.START_SYNC) {
    bus.deliverOne(); // confchg
    bus.deliverOne(); // SYNC_START
    bus.queue = [];
    return { bus, target: b };
  }
  // UPDATE: b is behind
  while (b.core.mode !== Mode.UPDATE) assert(bus.deliverOne());
  bus.queue = [];
  return { bus, target: b };
}

const MODES: Mode[] = [Mode.START, Mode.START_SYNC, Mode.SYNCED, Mode.UPDATE];

Deno.test(`fuzz: ${TOTAL} random and mutated messages in every mode never throw (seed ${SEED})`, () => {
  const rnd = prng(SEED);
  const corpus = allCaptureLines().map((l) => l.bytes);
  const senders: MemberId[] = [
    { nodeid: 1, pid: 101 },
    { nodeid: 2, pid: 102 },
    { nodeid: 3, pid: 103 },
    { nodeid: 1, pid: 999 },
  ];
  const outcomes: Record<string, number> = {};
  let s: Setup | undefined;
  let mode: Mode = Mode.START;
  for (let i = 0; i < TOTAL; i++) {
    if (i % (TOTAL / 8) === 0 || !s || s.target.core.mode >= 128 || rnd.int(50) === 0) {
      mode = MODES[(i / (TOTAL / 8)) % 4 | 0];
      s = setup(mode);
    }
    const t = s.target;
    const before = t.core.mode;
    // build an input
    let b: Uint8Array;
    const kind = rnd.int(10);
    if (kind === 0) {
      b = new Uint8Array(rnd.int(80)).map(() => rnd.int(256));
    } else {
      b = rnd.pick(corpus).slice();
      if (b.length >= 8 && rnd.int(3) > 0) b[4] = 1; // mostly the right version
      if (b.length >= 32 && rnd.int(2) === 0) {
        const e = t.core.syncEpoch;
        const dv = new DataView(b.buffer);
        dv.setUint32(16, e.counter, true);
        dv.setUint32(20, e.time, true);
        dv.setUint32(24, e.nodeid, true);
        dv.setUint32(28, e.pid, true);
      }
      const m = rnd.int(6);
      if (m === 0) b = b.subarray(0, rnd.int(b.length + 1));
      else if (m === 1) {
        const x = new Uint8Array(b.length + 1 + rnd.int(64));
        x.set(b);
        for (let j = b.length; j < x.length; j++) x[j] = rnd.int(256);
        b = x;
      } else if (m === 2) {
        for (let k = 1 + rnd.int(4); k > 0 && b.length; k--) {
          b[rnd.int(b.length)] ^= 1 << rnd.int(8);
        }
      } else if (m === 3 && b.length >= 2) b[0] = rnd.int(10);
      else if (m === 4 && b.length >= 8) b[4] = rnd.int(3);
    }
    const from = rnd.pick(senders);
    let eff: DfsmEffect[];
    try {
      eff = t.core.step({ type: "delivered", now: s.bus.now, from, bytes: b });
    } catch (e) {
      throw new Error(`iteration ${i} (mode ${before}) threw: ${e}`);
    }
    const after = t.core.mode;
    const crits = eff.filter((e) => e.type === "log" && e.level === "crit");
    const version = b.length >= 8 ? new DataView(b.buffer, b.byteOffset).getUint32(4, true) : -1;
    if (b.length < 16) {
      assertEquals(after, Mode.LEAVE, `iteration ${i}: short message`);
    } else if (version > 1) {
      assertEquals(after, Mode.VERSION_ERROR, `iteration ${i}: newer version`);
    } else if (version < 1) {
      assertEquals(after, before, `iteration ${i}: older version is dropped`);
      assertEquals(eff.length, 1);
    }
    if (after !== before && after >= 128) {
      // every fall into an error mode says why and leaves the group
      assert(crits.length >= 1, `iteration ${i}: no crit line`);
      assert(eff.some((e) => e.type === "leaveGroup"), `iteration ${i}: no leaveGroup`);
    }
    for (const e of eff) {
      if (e.type === "mcast") assert(e.bytes.length >= 24 && e.seq > 0);
      if (e.type === "log") assert(typeof e.text === "string" && e.domain === "dcdb");
    }
    const key = `${before}->${after}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  // every mode was exercised, and both dropping and leaving happened
  for (const m of MODES) {
    assert(outcomes[`${m}->${m}`] > 0, `mode ${m} kept: ${JSON.stringify(outcomes)}`);
  }
  for (const m of MODES) {
    assert(outcomes[`${m}->253`] > 0, `mode ${m} left: ${JSON.stringify(outcomes)}`);
  }
});

Deno.test("fuzz: random event sequences on a 3-member bus never throw and settle", () => {
  const rnd = prng(SEED ^ 0x5a5a);
  for (let round = 0; round < 40; round++) {
    const bus = new Bus();
    const nodes = [bus.add(1), bus.add(2), bus.add(3)];
    for (const n of nodes) bus.join(n);
    for (let i = 0; i < 60; i++) {
      const n = rnd.pick(nodes);
      const r = rnd.int(12);
      if (r < 6) bus.send(n, `m${i}`, i, rnd.int(30) === 0 ? 99 : 1);
      else if (r < 8) bus.deliverOne();
      else if (r === 8) bus.timer(n);
      else if (r === 9 && bus.members.includes(n) && bus.members.length > 1) bus.crash(n);
      else if (r === 10 && !bus.members.includes(n)) bus.reinit(n);
      else if (r === 11) n.failSends = 1;
    }
    bus.run();
    // every node that is still a member and not in an error mode converges to the same log
    for (const n of nodes) if (!bus.members.includes(n) || n.core.mode >= 128) bus.reinit(n);
    bus.run();
    for (const n of nodes) n.failSends = 0;
    for (const n of nodes) if (n.core.mode === Mode.LEAVE) bus.reinit(n);
    bus.run();
    const synced = nodes.filter((n) => n.core.mode === Mode.SYNCED);
    for (const n of synced) assertEquals(n.app.log, synced[0].app.log, `round ${round} ${n.name}`);
  }
});

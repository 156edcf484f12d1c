/**
 * The cluster simulator (tests/sim/cluster.ts): scripted scenarios of spec section 13 and
 * seeded random runs (3-5 nodes; partitions, merges, daemon and node crashes with restarts,
 * corosync stops and starts, TRY_AGAIN, lowered expected votes; random ops from every node)
 * checked at every quiescent point by `SimCluster.check`.
 *
 * `SEED=<n>` replays one seed (its log printed on failure), `SEEDS=<n>` runs n seeds,
 * `PMXCFS_SOAK=1` runs 20,000.
 */
import { assert, assertEquals } from "../unit/assert.ts";
import { SimCluster, type SimStats } from "./cluster.ts";
import { prng } from "../unit/prng.ts";
import { Mode } from "../../src/dfsm/types.ts";
import { Errno } from "../../src/util/errno.ts";
import type { Op } from "../../src/memdb/op.ts";

const DIRS = ["a", "a/b", "c", "nodes", "nodes/n1", "nodes/n2", "priv", "priv/lock"];
const NAMES = ["x", "y", "z.cfg", "100.conf"];
const GUEST = ["nodes/n1/qemu-server", "nodes/n2/qemu-server", "nodes/n1/lxc", "nodes/n2/lxc"];
const SKELETON = [...DIRS, ...GUEST];

/** A random op over a small collision-rich namespace (as tests/unit/random_ops.ts). */
function randomOp(c: SimCluster, r: ReturnType<typeof prng>, now: number): Op {
  const path = () => {
    const roll = r.int(10);
    if (roll < 4) return `${r.pick(GUEST)}/${100 + r.int(4)}.conf`;
    if (roll < 5) return `priv/lock/L${r.int(3)}`;
    if (roll < 7) return r.pick(SKELETON);
    return `${r.pick(SKELETON)}/${r.pick(NAMES)}`;
  };
  const p = path();
  const kind = r.int(16);
  if (kind < 2) return { type: "mkdir", path: p };
  if (kind < 4) return { type: "create", path: p };
  if (kind < 8) {
    const big = r.int(50) === 0;
    const off = big ? 1048576 - r.int(3000) : r.int(3000);
    return c.taggedWrite(p, off, 8 + r.int(big ? 6000 : 500), r.int(3) === 0);
  }
  if (kind < 9) {
    return { type: "write", path: p, offset: r.int(4000), data: new Uint8Array(), truncate: true };
  }
  if (kind < 10) return { type: "mtime", path: p, mtime: Math.floor(now) - r.int(100) };
  if (kind < 12) return { type: "delete", path: p };
  if (kind < 15) return { type: "rename", path: p, to: path() };
  return { type: "unlockRequest", path: p };
}

interface RunResult {
  problems: string[];
  stats: SimStats & { c4HealedByVerification: number; vmListDriftHealedByVerification: number };
  logs: string;
}

/** One seeded random run; returns the problems found at the quiescent points. */
export function randomRun(seed: number, trace?: (l: string) => void): RunResult {
  const r = prng(seed);
  const n = 3 + r.int(3);
  const tryAgainRate = r.int(3) === 0 ? 0.05 : 0;
  // one seed in four keeps C's order during UPDATE windows (holdUnsyncedSenders off)
  const cCompatible = seed % 4 === 0 || !!Deno.env.get("SIM_C4");
  const c = new SimCluster({
    seed,
    nodes: n,
    tryAgainRate,
    trace,
    holdUnsyncedSenders: !cCompatible,
    unjoinedMcast: seed % 3 === 2 ? "drop" : "not_exist",
  });
  const problems: string[] = [];
  let c4 = 0;
  let vmDrift = 0;
  const at = (what: string) => {
    let found = c.check();
    const differ = found.length > 0 && found.every((p) => p.includes("synced members differ"));
    const drift = differ && found.every((p) => p.includes("after a VM list drift"));
    if (differ && (cCompatible || drift)) {
      // Quirk C4 (C-compatible ordering) or a VM list drifted from its tree (storage spec 5.2:
      // derived state): replicas may differ until a verification resyncs them
      if (drift) vmDrift++;
      else c4++;
      c.verify();
      c.runUntilQuiet();
      found = c.check();
    }
    for (const p of found) problems.push(`${what} (t=${c.bus.now}): ${p}`);
  };
  try {
    c.runUntilQuiet();
    at("start");
    for (const d of SKELETON) c.op(1, { type: "mkdir", path: d });
    c.runUntilQuiet();
    at("skeleton");
    const rounds = 6 + r.int(10);
    const crashed = new Set<number>();
    const coroDown = new Set<number>();
    const ids = c.nodes.map((x) => x.id);
    /** One random fault (or none). */
    const fault = () => {
      const f = r.int(10);
      if (f === 0) {
        const cut = 1 + r.int(n - 1);
        const shuffled = r.shuffle(ids);
        c.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      } else if (f === 1) c.heal();
      else if (f === 2) {
        const k = r.pick(ids);
        const whole = r.int(2) === 0;
        c.crash(k, { node: whole });
        crashed.add(k);
        if (whole) coroDown.add(k);
      } else if (f === 3 && crashed.size) {
        const k = r.pick([...crashed]);
        c.restart(k, { corosync: r.int(2) === 0 });
        crashed.delete(k);
      } else if (f === 4) {
        const k = r.pick(ids);
        c.stopCorosync(k);
        coroDown.add(k);
      } else if (f === 5 && coroDown.size) {
        const k = r.pick([...coroDown]);
        c.startCorosync(k);
        coroDown.delete(k);
      } else if (f === 6) {
        c.injectTryAgain(r.pick(ids), 1 + r.int(150));
      } else if (f === 7 && r.int(3) === 0) {
        c.setExpectedVotes(r.int(2) === 0 ? 1 + r.int(2) : undefined);
      }
    };
    for (let round = 0; round < rounds && problems.length === 0; round++) {
      fault();
      // random ops interleaved with bus steps
      const nops = r.int(14);
      for (let i = 0; i < nops; i++) {
        const k = r.pick(ids);
        if (!c.node(k).alive) continue;
        if (r.int(12) === 0) {
          // the writes of one file handle, in order
          const p = r.pick(["a/x", "c/y", "nodes/n1/qemu-server/100.conf"]);
          c.op(k, [c.taggedWrite(p, 0, 20, true), c.taggedWrite(p, 20, 20)]);
        } else c.op(k, randomOp(c, r, c.clock(k)));
        if (r.int(3) > 0) c.run(r.int(25));
        if (r.int(12) === 0) fault(); // with messages in flight
      }
      if (r.int(2) === 0) {
        c.runUntilQuiet();
        at(`round ${round}`);
      } else c.run(r.int(300));
    }
    // heal everything and check the converged cluster
    c.heal();
    c.setExpectedVotes(undefined);
    for (const x of c.nodes) {
      if (!c.bus.corosyncUp(x.id)) c.startCorosync(x.id);
      if (!x.alive) c.restart(x.id);
    }
    c.runUntilQuiet();
    at("end");
    if (!c.connected()) problems.push("end: not connected");
    return {
      problems,
      stats: { ...c.stats, c4HealedByVerification: c4, vmListDriftHealedByVerification: vmDrift },
      logs: c.nodes.map((x) => `--- node ${x.id}\n${x.logs.join("\n")}`).join("\n"),
    };
  } catch (e) {
    problems.push(`exception: ${(e as Error).stack ?? e}`);
    return {
      problems,
      stats: { ...c.stats, c4HealedByVerification: c4, vmListDriftHealedByVerification: vmDrift },
      logs: c.nodes.map((x) => `--- node ${x.id}\n${x.logs.join("\n")}`).join("\n"),
    };
  } finally {
    c.close();
  }
}

// ---- scripted scenarios ---------------------------------------------------------------------

Deno.test("three nodes start, sync, and replicate an op with its errno", () => {
  using c = new SimCluster({ seed: 1, nodes: 3 });
  c.runUntilQuiet();
  assertEquals(c.nodes.map((n) => n.mode), [Mode.SYNCED, Mode.SYNCED, Mode.SYNCED]);
  assertEquals(c.errnoOf(2, { type: "mkdir", path: "nodes" }), 0);
  assertEquals(c.errnoOf(3, { type: "mkdir", path: "nodes" }), Errno.EEXIST);
  assertEquals(c.errnoOf(1, { type: "create", path: "nodes/f" }), 0);
  assertEquals(c.errnoOf(3, c.taggedWrite("nodes/f", 0, 100)), 0);
  assertEquals(new Set(c.checksums().values()).size, 1);
  assertEquals(c.check(), []);
  assert(c.logs(1).includes("[dcdb] notice: all data is up to date"));
});

Deno.test("without quorum: EACCES, nothing sent; the minority catches up after the merge", () => {
  using c = new SimCluster({ seed: 2, nodes: 3 });
  c.runUntilQuiet();
  c.partition([[1, 2], [3]]);
  c.runUntilQuiet();
  assertEquals(c.errnoOf(3, { type: "mkdir", path: "x" }), Errno.EACCES);
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "y" }), 0);
  assertEquals(c.check(), []);
  c.heal();
  c.runUntilQuiet();
  assertEquals(c.check(), []);
  assert(c.node(3).db.memdb.lookup("y"));
  assert(!c.node(1).db.memdb.lookup("x"));
});

Deno.test("a write ordered while the node already lost quorum is rejected: EPERM, then the node resyncs", () => {
  using c = new SimCluster({ seed: 3, nodes: 3 });
  c.runUntilQuiet();
  c.partition([[1, 2], [3]]);
  // node 3 has not dispatched its quorum notification yet: it sends; the delivery may see it
  const r = c.op(3, { type: "mkdir", path: "x" });
  c.runUntilQuiet();
  assert(r.errno === 0 || r.errno === Errno.EPERM, `errno ${r.errno}`);
  c.heal();
  c.runUntilQuiet();
  assertEquals(c.check(), []);
});

Deno.test("a daemon crash and restart: new pid, database reopened, synced again", () => {
  using c = new SimCluster({ seed: 4, nodes: 3 });
  c.runUntilQuiet();
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "a" }), 0);
  const pid = c.node(2).process!.pid;
  c.crash(2);
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "b" }), 0);
  c.restart(2);
  c.runUntilQuiet();
  assert(c.node(2).process!.pid !== pid);
  assert(c.node(2).db.memdb.lookup("b"));
  assertEquals(c.check(), []);
});

Deno.test("corosync dies under a node: waiting callers get EBUSY, re-initialisation once it is back", () => {
  using c = new SimCluster({ seed: 5, nodes: 3 });
  c.runUntilQuiet();
  const r = c.op(2, { type: "mkdir", path: "a" });
  c.stopCorosync(2);
  c.runUntilQuiet();
  assertEquals(r.errno, Errno.EBUSY);
  assertEquals(c.errnoOf(2, { type: "mkdir", path: "b" }), Errno.EACCES);
  c.startCorosync(2);
  c.runUntilQuiet();
  assertEquals(c.node(2).mode, Mode.SYNCED);
  assertEquals(c.check(), []);
});

Deno.test("TRY_AGAIN: retried every 100 ms; 100 of them: EBUSY, nothing applied", () => {
  using c = new SimCluster({ seed: 6, nodes: 3 });
  c.runUntilQuiet();
  c.injectTryAgain(1, 5);
  const t0 = c.bus.now;
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "a" }), 0);
  assert(c.bus.now - t0 >= 500);
  c.injectTryAgain(1, 100);
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "b" }), Errno.EBUSY);
  assert(!c.node(2).db.memdb.lookup("b"));
  assert(c.logs(1).some((l) => l.includes("cpg_send_message retried 100 times")));
  assertEquals(c.check(), []);
});

Deno.test("split brain (C1): both sides quorate, the higher version wins, the other side's writes are lost and logged", () => {
  using c = new SimCluster({ seed: 7, nodes: 4 });
  c.runUntilQuiet();
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "d" }), 0);
  assertEquals(c.errnoOf(1, { type: "create", path: "d/f" }), 0);
  c.setExpectedVotes(2);
  c.partition([[1, 2], [3, 4]]);
  c.runUntilQuiet();
  assertEquals(c.errnoOf(1, c.taggedWrite("d/f", 0, 10)), 0);
  assertEquals(c.errnoOf(3, c.taggedWrite("d/f", 0, 10)), 0);
  assertEquals(c.errnoOf(3, { type: "mkdir", path: "e" }), 0);
  c.heal();
  c.setExpectedVotes(undefined);
  c.runUntilQuiet();
  assertEquals(c.check(), []);
  assertEquals(c.stats.lostSplitBrain, 1);
  assert(c.logs(1).some((l) => l.includes("resync replaces local 'd/f'")));
});

Deno.test("the verification timer runs without disturbing a synced cluster", () => {
  using c = new SimCluster({ seed: 8, nodes: 3 });
  c.runUntilQuiet();
  assertEquals(c.errnoOf(2, { type: "mkdir", path: "a" }), 0);
  c.verify();
  c.runUntilQuiet();
  assertEquals(c.check(), []);
  assertEquals(c.nodes.map((n) => n.mode), [Mode.SYNCED, Mode.SYNCED, Mode.SYNCED]);
});

// ---- random runs ----------------------------------------------------------------------------

const one = Deno.env.get("SEED");
const count = Deno.env.get("PMXCFS_SOAK") ? 20_000 : Number(Deno.env.get("SEEDS") ?? 300);

Deno.test(`random cluster runs (${one ? `seed ${one}` : `${count} seeds`}, 3-5 nodes)`, () => {
  const seeds = one ? [Number(one)] : Array.from({ length: count }, (_, i) => i + 1);
  const total: Record<string, number> = {};
  const t0 = performance.now();
  for (const seed of seeds) {
    const res = randomRun(seed);
    for (const [k, v] of Object.entries(res.stats)) total[k] = (total[k] ?? 0) + v;
    if (res.problems.length) {
      if (one) console.log(res.logs);
      throw new Error(
        `seed ${seed}: ${res.problems.slice(0, 5).join("\n")}\n` +
          `replay: SEED=${seed} deno test -A tests/sim/cluster_test.ts`,
      );
    }
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`${seeds.length} seeds in ${secs} s: ${JSON.stringify(total)}`);
});

Deno.test("a VM list drifted from its tree (storage spec 5.2) makes replicas differ until a verification", () => {
  using c = new SimCluster({ seed: 9, nodes: 3 });
  c.runUntilQuiet();
  for (const d of ["nodes", "nodes/n1", "nodes/n1/lxc", "nodes/n1/qemu-server", "nodes/n2"]) {
    assertEquals(c.errnoOf(1, { type: "mkdir", path: d }), 0);
  }
  assertEquals(c.errnoOf(1, { type: "mkdir", path: "nodes/n2/lxc" }), 0);
  assertEquals(c.errnoOf(1, { type: "create", path: "nodes/n2/lxc/101.conf" }), 0);
  // a DIRECTORY at a VM config path; its rmdir drops VMID 101 "whatever node it was registered to"
  assertEquals(c.errnoOf(2, { type: "mkdir", path: "nodes/n1/lxc/101.conf" }), 0);
  assertEquals(c.errnoOf(2, { type: "delete", path: "nodes/n1/lxc/101.conf" }), 0);
  assert(c.vmListDriftEra);
  c.crash(3);
  c.restart(3); // rebuilds its VM list from the tree: 101 is on n2/lxc again
  c.runUntilQuiet();
  assertEquals(c.check(), []);
  // node 1 and 2 accept a second VM 101, node 3 refuses it (EEXIST)
  assertEquals(c.errnoOf(1, { type: "create", path: "nodes/n1/qemu-server/101.conf" }), 0);
  const found = c.check();
  assertEquals(found.length, 1);
  assert(found[0].includes("synced members differ") && found[0].includes("VM list drift"));
  c.verify(); // node 3's checksum differs: it leaves, rejoins, resyncs
  c.runUntilQuiet();
  assertEquals(c.check(), []);
  assert(c.node(3).db.memdb.lookup("nodes/n1/qemu-server/101.conf"));
});

Deno.test("a seed replays exactly: same node logs and counters alone and after other seeds", () => {
  const a = randomRun(12);
  randomRun(13);
  const b = randomRun(12);
  assertEquals(b.logs, a.logs);
  assertEquals(b.stats, a.stats);
});

/**
 * The DFSM core with the database application, without corosync:
 *
 * (a) replicated writes/s through one core: encode a 4 KiB WRITE (FUSE message), send it
 *     through a synced single-member core, deliver the core's multicast back as our own
 *     message, apply it to memdb and persist it in config.db, answer the waiting sender: the
 *     full path of a replicated write minus corosync;
 * (b) a sync round over a 10,000-file tree where 1,000 files differ: the leader's states and
 *     update computation (getState, processStates: index comparison and UPDATE encoding), then
 *     the follower's processStates + processUpdate for every UPDATE + commit (whole-state
 *     replacement in one SQLite transaction);
 * (c) memory per queued message: 100,000 NORMAL messages of 4 KiB delivered to a core in
 *     START_SYNC mode (all queued until the round ends): heap + external growth / count.
 *
 * Prints figures, asserts nothing. Databases live under /var/tmp (a real disk, not tmpfs).
 * Run: deno run -A bench/dfsm.ts [--dir DIR]
 */
import { parseArgs } from "node:util";
import { Database } from "../src/store/database.ts";
import { Dfsm } from "../src/dfsm/dfsm.ts";
import { encodeNormal } from "../src/dfsm/codec.ts";
import { DcdbApp } from "../src/dcdb/dcdb_app.ts";
import { encodeFuseMessage } from "../src/dcdb/codec.ts";
import { Errno } from "../src/util/errno.ts";
import {
  type DfsmConfig,
  type DfsmContext,
  type DfsmEffect,
  type MemberId,
  Mode,
} from "../src/dfsm/types.ts";

const { values } = parseArgs({ options: { dir: { type: "string" } } });
const base = values.dir ?? Deno.makeTempDirSync({ dir: "/var/tmp", prefix: "pmxcfs-bench-" });
const T = 1_795_561_000;
const DCDB: DfsmConfig = {
  groupName: "pve_dcdb_v1",
  protocolVersion: 1,
  domain: "dcdb",
  verifyPeriod: 3600,
};
const block = new Uint8Array(4096).map((_, i) => i & 0xff);

function ok(r: { errno: number }, what: string): void {
  if (r.errno !== 0) throw new Error(`${what}: errno ${r.errno}`);
}

function line(label: string, value: string): void {
  console.log(`${label.padEnd(56)} ${value}`);
}

// ---- (a) one core, own messages -----------------------------------------------------------

{
  const db = Database.open(`${base}/a.db`, T);
  const self: MemberId = { nodeid: 1, pid: 1000 };
  const app = new DcdbApp(db, { quorate: () => true, self: () => self });
  const core = new Dfsm(DCDB, app);
  core.step({ type: "initialised", now: T, nodeid: 1, pid: 1000 });
  core.step({ type: "confchg", now: T, members: [self], left: [], joined: [self] });
  if (core.mode !== Mode.SYNCED) throw new Error(`not synced: mode ${core.mode}`);
  ok(db.apply({ type: "mkdir", path: "d" }, { writer: 1, mtime: T }), "mkdir");
  for (let i = 0; i < 100; i++) {
    ok(db.apply({ type: "create", path: `d/f${i}` }, { writer: 1, mtime: T }), "create");
  }

  let completed = 0;
  const one = (i: number) => {
    const { subtype, payload } = encodeFuseMessage({
      type: "write",
      path: `d/f${i % 100}`,
      offset: 0,
      data: block,
      truncate: true,
    });
    const out: DfsmEffect[] = core.step({
      type: "send",
      now: T,
      subtype,
      payload,
      ticket: i,
      preset: -Errno.EBUSY,
    });
    for (const e of out) {
      if (e.type !== "mcast") continue;
      for (const d of core.step({ type: "delivered", now: T, from: self, bytes: e.bytes })) {
        if (d.type === "complete" && d.outcome.processed && d.outcome.result === 4096) {
          completed++;
        }
      }
    }
  };
  for (let i = 0; i < 500; i++) one(i); // warm-up
  completed = 0;
  const N = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) one(i);
  const ms = performance.now() - t0;
  if (completed !== N) throw new Error(`${completed} of ${N} writes completed`);
  line(
    "(a) 4 KiB replicated writes through one core",
    `${Math.round(N / (ms / 1000))} msg/s (${N} in ${ms.toFixed(0)} ms, ${
      (ms * 1000 / N).toFixed(1)
    } µs each)`,
  );
  db.close();
}

// ---- (b) a sync round: 10,000 files, 1,000 differ -------------------------------------------

interface Ctx extends DfsmContext {
  updates: Uint8Array[];
  completes: number;
}

function ctx(): Ctx {
  const c: Ctx = {
    now: T + 100,
    updates: [],
    completes: 0,
    mcastNormal: () => {},
    mcastUpdate: (p) => c.updates.push(p),
    mcastUpdateComplete: () => c.completes++,
    log: () => {},
  };
  return c;
}

{
  const FILES = 10_000;
  const DIFFER = 1_000;
  const leaderPath = `${base}/leader.db`;
  const followerPath = `${base}/follower.db`;
  {
    const db = Database.open(leaderPath, T);
    const s = { writer: 1, mtime: T };
    for (let d = 0; d < 100; d++) ok(db.apply({ type: "mkdir", path: `d${d}` }, s), "mkdir");
    for (let i = 0; i < FILES; i++) {
      const path = `d${i % 100}/f${i}.conf`;
      ok(db.apply({ type: "create", path }, s), "create");
      ok(db.apply({ type: "write", path, offset: 0, data: block, truncate: true }, s), "write");
    }
    db.close();
  }
  Deno.copyFileSync(leaderPath, followerPath);
  const leaderDb = Database.open(leaderPath, T);
  const followerDb = Database.open(followerPath, T);
  const changed = block.map((b) => b ^ 0xff);
  for (let i = 0; i < DIFFER; i++) {
    const path = `d${(i * 10) % 100}/f${i * 10}.conf`;
    ok(
      leaderDb.apply({ type: "write", path, offset: 0, data: changed, truncate: true }, {
        writer: 1,
        mtime: T + 50,
      }),
      "change",
    );
  }
  const lm: MemberId = { nodeid: 1, pid: 1000 };
  const fm: MemberId = { nodeid: 2, pid: 2000 };
  const leader = new DcdbApp(leaderDb, { quorate: () => true, self: () => lm });
  const follower = new DcdbApp(followerDb, { quorate: () => true, self: () => fm });

  const lc = ctx();
  const t0 = performance.now();
  const ls = leader.getState(lc)!;
  const fs = follower.getState(ctx())!;
  const tState = performance.now();
  const states = [{ member: lm, state: ls }, { member: fm, state: fs }];
  const lr = leader.processStates(lc, states);
  const t1 = performance.now();
  if (lr === "error" || lc.completes !== 1) throw new Error("leader failed");

  const fc = ctx();
  const t2 = performance.now();
  const fr = follower.processStates(fc, states);
  if (fr === "error") throw new Error("follower processStates failed");
  for (const u of lc.updates) {
    if (!follower.processUpdate(fc, lm, u)) throw new Error("processUpdate failed");
  }
  if (!follower.commit(fc)) throw new Error("commit failed");
  const t3 = performance.now();
  const same = followerDb.memdb.treeChecksum().every((b, i) =>
    b === leaderDb.memdb.treeChecksum()[i]
  );
  if (!same) throw new Error("follower differs from leader after the commit");
  line(
    `(b) leader: states + updates, ${FILES} files, ${DIFFER} differ`,
    `${(t1 - t0).toFixed(0)} ms (2 indexes ${
      (tState - t0).toFixed(0)
    } ms; ${lc.updates.length} UPDATEs, ${
      (lc.updates.reduce((a, u) => a + u.length, 0) / 1048576).toFixed(1)
    } MiB)`,
  );
  line(
    "(b) follower: processStates + processUpdate + commit",
    `${(t3 - t2).toFixed(0)} ms`,
  );
  leaderDb.close();
  followerDb.close();
}

// ---- (c) memory per queued message -----------------------------------------------------------

{
  const db = Database.open(`${base}/c.db`, T);
  const a: MemberId = { nodeid: 1, pid: 1000 };
  const b: MemberId = { nodeid: 2, pid: 2000 };
  const app = new DcdbApp(db, { quorate: () => true, self: () => b });
  const core = new Dfsm(DCDB, app);
  core.step({ type: "initialised", now: T, nodeid: 2, pid: 2000 });
  core.step({ type: "confchg", now: T, members: [a, b], left: [], joined: [b] });
  if (core.mode !== Mode.START_SYNC) throw new Error(`not START_SYNC: mode ${core.mode}`);
  const N = 100_000;
  const msgs: Uint8Array[] = [];
  const { subtype, payload } = encodeFuseMessage({
    type: "write",
    path: "f",
    offset: 0,
    data: block,
    truncate: true,
  });
  // the delivered buffers are built first (corosync's buffers are not ours to count)
  for (let i = 0; i < N; i++) msgs.push(encodeNormal(subtype, 1, T, i + 1, payload));
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const m0 = Deno.memoryUsage();
  for (let i = 0; i < N; i++) core.step({ type: "delivered", now: T, from: a, bytes: msgs[i] });
  gc?.();
  const m1 = Deno.memoryUsage();
  if (core.msgQueueLength !== N) throw new Error(`queue ${core.msgQueueLength}, want ${N}`);
  const per = (k: "heapUsed" | "external" | "rss") => ((m1[k] - m0[k]) / N).toFixed(0);
  line(
    `(c) queued 4 KiB NORMAL messages (${N}, START_SYNC)`,
    `${((m1.heapUsed + m1.external - m0.heapUsed - m0.external) / N).toFixed(0)} B/message (heap ${
      per("heapUsed")
    } + external ${per("external")}; rss ${per("rss")}; ${msgs[0].length} B on the wire)${
      gc ? "" : " [no --v8-flags=--expose-gc: approximate]"
    }`,
  );
  db.close();
}

if (!values.dir) Deno.removeSync(base, { recursive: true });

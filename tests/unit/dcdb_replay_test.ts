/**
 * Replay of the C capture (cluster spec 9.5, section 13 cases 2, 3, 12, 14): the database-group
 * NORMAL messages of both nodes, applied in the capture's total order, reproduce node2's STATE at
 * its rejoin and node1's final STATE; the leader's update computation yields the 5 UPDATEs the C
 * leader sent, and a follower commits them to the leader's tree.
 */
import { assert, assertEquals } from "./assert.ts";
import { freshDb } from "./helpers.ts";
import { captureLines, type CaptureMsg } from "./dcdb_capture.ts";
import { fakeCtx } from "./dcdb_fakes.ts";
import { type ApplyEnv, applyMessage } from "../../src/dcdb/apply.ts";
import { decodeState, decodeUpdate, encodeUpdate } from "../../src/dcdb/codec.ts";
import { updateInodes, updateRows } from "../../src/dcdb/sync.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import { encodeIndex, type TreeIndex } from "../../src/memdb/checksum.ts";
import type { Database } from "../../src/store/database.ts";

const START = 1795561396;
const PIDS = { 1: 10701, 2: 10702 } as const;
/** node2's daemon was stopped here (ops.log); it had applied everything sent before. */
const NODE2_STOP = 1795561420.443;

const node1 = captureLines(1);
const node2 = captureLines(2);
/** Every NORMAL message of both nodes in send order (the total order of the capture). */
const normals = [...node1, ...node2].filter((m) => m.type === 0).sort((a, b) => a.time - b.time);
const stateOf = (msgs: CaptureMsg[], line: number) => msgs.find((m) => m.line === line)!.payload;
const FIRST_STATE = stateOf(node1, 2);
const NODE2_REJOIN = stateOf(node2, 7);
const NODE1_REJOIN = stateOf(node1, 28);
const C_UPDATES = node1.filter((m) => m.type === 3).map((m) => m.payload);

function index(b: Uint8Array): TreeIndex {
  const d = decodeState(b);
  if (!d.ok) throw new Error(d.error);
  return d.value;
}

/** `idx` with the digest of inode 2 (corosync.conf, content not in the capture) from `from`. */
function withCorosyncDigest(idx: TreeIndex, from: TreeIndex): TreeIndex {
  const digest = from.entries.find((e) => e.inode === 2)!.digest;
  return {
    ...idx,
    entries: idx.entries.map((e) => (e.inode === 2 ? { inode: 2, digest } : e)),
  };
}

/** A database as both daemons started: fresh, then corosync.conf imported (root version 3). */
function seeded(): ReturnType<typeof freshDb> {
  const h = freshDb(START);
  const s = { writer: 0, mtime: START };
  assertEquals(h.db.apply({ type: "create", path: "corosync.conf" }, s).errno, 0);
  const conf = new TextEncoder().encode(
    "totem {\n  cluster_name: wiretest\n  config_version: 2\n}\n",
  );
  const w = h.db.apply({
    type: "write",
    path: "corosync.conf",
    offset: 0,
    data: conf,
    truncate: true,
  }, s);
  assertEquals(w.errno, 0);
  return h;
}

function env(self: 1 | 2): ApplyEnv {
  return {
    quorate: () => true,
    self: () => ({ nodeid: self, pid: PIDS[self] }),
    lowestNodeid: () => 1,
  };
}

function replay(db: Database, msgs: CaptureMsg[]): void {
  for (const m of msgs) {
    const ctx = fakeCtx(Math.floor(m.time));
    const from = { nodeid: m.node, pid: PIDS[m.node] };
    const r = applyMessage(db, env(1), ctx, from, m.subtype, m.hdrTime, m.payload);
    assertEquals(r.ret, "ok", `node${m.node}:${m.line}`);
    assert(r.result !== undefined && r.result >= 0, `node${m.node}:${m.line} -> ${r.result}`);
    assertEquals(ctx.logs, []);
  }
}

function ownIndex(db: Database): Uint8Array {
  return encodeIndex(db.memdb.index());
}

/** Our index with the captured corosync.conf digest, as bytes. */
function comparable(db: Database): Uint8Array {
  return encodeIndex(withCorosyncDigest(db.memdb.index(), index(FIRST_STATE)));
}

Deno.test("the seeded database is the first round's STATE (corosync.conf digest aside)", () => {
  using h = seeded();
  assertEquals(comparable(h.db), FIRST_STATE);
});

Deno.test("replaying the capture's NORMAL messages reproduces node2's rejoin STATE and node1's final STATE", () => {
  assertEquals(normals.length, 22);
  using h = seeded();
  replay(h.db, normals.filter((m) => m.time < NODE2_STOP));
  assertEquals(h.db.memdb.version, 19);
  assertEquals(comparable(h.db), NODE2_REJOIN);
  replay(h.db, normals.filter((m) => m.time >= NODE2_STOP));
  assertEquals(h.db.memdb.version, 25);
  assertEquals(comparable(h.db), NODE1_REJOIN);
});

Deno.test("the leader's update computation yields the 5 UPDATEs the C leader sent", () => {
  using h = seeded();
  replay(h.db, normals);
  const leader = h.db.memdb.index();
  const follower = withCorosyncDigest(index(NODE2_REJOIN), leader);
  const inodes = updateInodes(leader, [follower]);
  assertEquals(inodes, [0, 20, 21, 22, 24]);
  const rows = updateRows(h.db.memdb, inodes);
  assert(typeof rows !== "string");
  const byInode = (a: Uint8Array, b: Uint8Array) =>
    new DataView(a.buffer, a.byteOffset).getUint32(8, true) -
    new DataView(b.buffer, b.byteOffset).getUint32(8, true);
  assertEquals(rows.map(encodeUpdate).sort(byInode), [...C_UPDATES].sort(byInode));
});

Deno.test("the rejoin round through DcdbApp: leader sends the 5 UPDATEs, the follower commits them", () => {
  using l = seeded();
  using f = seeded();
  replay(l.db, normals);
  replay(f.db, normals.filter((m) => m.time < NODE2_STOP));
  const m1 = { nodeid: 1, pid: 10701 }, m2 = { nodeid: 2, pid: 10829 };
  let confs: boolean[] = [];
  const leader = new DcdbApp(l.db, { quorate: () => true, self: () => m1 });
  const follower = new DcdbApp(f.db, {
    quorate: () => true,
    self: () => m2,
    corosyncConfChanged: (notify) => confs.push(notify),
  });
  const lc = fakeCtx(), fc = fakeCtx();
  const s1 = leader.getState(lc)!, s2 = follower.getState(fc)!;
  assertEquals(s1, ownIndex(l.db));
  const states = [{ member: m1, state: s1 }, { member: m2, state: s2 }];

  assertEquals(leader.processStates(lc, states), { synced: [m1] });
  assertEquals(lc.logs, [
    "notice: leader is 1/10701",
    "notice: synced members: 1/10701",
    "notice: start sending inode updates",
    "notice: sent all (5) updates",
  ]);
  assertEquals(lc.updates.length, 5);
  assertEquals(lc.completes, 1);
  // Sent in inode order; the same records as the C leader's (inode 2 is equal on both sides).
  const decoded = lc.updates.map((u) => decodeUpdate(u)).map((d) => (d.ok ? d.value.inode : -1));
  assertEquals(decoded, [0, 20, 21, 22, 24]);
  const cSorted = C_UPDATES.map((u) => decodeUpdate(u)).map((d) => d.ok && d.value)
    .sort((a, b) => (a ? a.inode : 0) - (b ? b.inode : 0));
  assertEquals(lc.updates.map((u) => decodeUpdate(u)).map((d) => d.ok && d.value), cSorted);

  assertEquals(follower.processStates(fc, states), { synced: [m1] });
  assertEquals(fc.updates.length + fc.completes, 0);
  for (const u of C_UPDATES) assert(follower.processUpdate(fc, m1, u));
  confs = [];
  assert(follower.commit(fc));
  assertEquals(fc.logs.at(-1), "notice: update complete - trying to commit (got 5 inode updates)");
  assertEquals(ownIndex(f.db), ownIndex(l.db));
  assertEquals(
    f.db.memdb.read("nodes/node2/lxc/200.conf"),
    new TextEncoder().encode("hostname: ct\n"),
  );
  assertEquals(confs, [false]);
  // The committed tree is on disk: a reload gives the same index.
  assertEquals(ownIndex(f.reopen(1795561424)), ownIndex(l.db));
});

Deno.test("first round of the capture: identical states, leader node1, 0 updates, one UPDATE_COMPLETE", () => {
  using h = seeded();
  const app = new DcdbApp(h.db, { quorate: () => true, self: () => ({ nodeid: 1, pid: 10701 }) });
  const ctx = fakeCtx(START);
  const mine = app.getState(ctx)!;
  const states = [
    { member: { nodeid: 2, pid: 10702 }, state: mine },
    { member: { nodeid: 1, pid: 10701 }, state: mine },
  ];
  assertEquals(app.processStates(ctx, states), {
    synced: [{ nodeid: 1, pid: 10701 }, { nodeid: 2, pid: 10702 }],
  });
  assertEquals(ctx.logs, [
    "notice: leader is 1/10701",
    "notice: synced members: 1/10701, 2/10702",
    "notice: start sending inode updates",
    "notice: sent all (0) updates",
  ]);
  assertEquals([ctx.updates.length, ctx.completes], [0, 1]);
});

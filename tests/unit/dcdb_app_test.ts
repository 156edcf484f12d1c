/**
 * DcdbApp sync rounds over real databases (cluster spec 5.7-5.11; section 13 cases 14, 15, 16):
 * the leader's updates bring every unsynced member to the leader's tree; entries only a follower
 * has are deleted; failed commits roll back; malformed states and updates are refused.
 */
import { assert, assertEquals } from "./assert.ts";
import { freshDb } from "./helpers.ts";
import { type FakeCtx, fakeCtx } from "./dcdb_fakes.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import { encodeUpdate } from "../../src/dcdb/codec.ts";
import { encodeIndex } from "../../src/memdb/checksum.ts";
import type { Database } from "../../src/store/database.ts";
import type { MemberId } from "../../src/dfsm/types.ts";
import type { Op } from "../../src/memdb/op.ts";

const T = 1700000000;
const enc = (s: string) => new TextEncoder().encode(s);

interface Node {
  member: MemberId;
  db: Database;
  app: DcdbApp;
  ctx: FakeCtx;
  confs: boolean[];
  [Symbol.dispose](): void;
}

function node(nodeid: number, ops: Op[]): Node {
  const h = freshDb(T);
  ops.forEach((op, i) => {
    const r = h.db.apply(op, { writer: 1, mtime: T + i });
    assertEquals(r.errno, 0, JSON.stringify(op));
  });
  const member = { nodeid, pid: 100 * nodeid };
  const confs: boolean[] = [];
  const app = new DcdbApp(h.db, {
    quorate: () => true,
    self: () => member,
    corosyncConfChanged: (n) => confs.push(n),
  });
  return {
    member,
    db: h.db,
    app,
    ctx: fakeCtx(T + 100),
    confs,
    [Symbol.dispose]: () => h[Symbol.dispose](),
  };
}

const index = (db: Database) => encodeIndex(db.memdb.index());

/** One sync round as the DFSM core drives it; returns each member's synced list. */
function round(nodes: Node[]): MemberId[] {
  const states = nodes.map((n) => ({ member: n.member, state: n.app.getState(n.ctx)! }));
  let synced: MemberId[] | undefined;
  for (const n of nodes) {
    const r = n.app.processStates(n.ctx, states);
    assert(r !== "error", n.ctx.logs.join("\n"));
    if (synced) assertEquals(r.synced, synced);
    synced = r.synced;
  }
  const leader = nodes.find((n) => n.ctx.completes > 0)!;
  assertEquals(leader.member, synced![0]);
  for (const n of nodes) {
    if (synced!.some((m) => m.nodeid === n.member.nodeid)) continue;
    for (const u of leader.ctx.updates) assert(n.app.processUpdate(n.ctx, leader.member, u));
    assert(n.app.commit(n.ctx), n.ctx.logs.join("\n"));
  }
  for (const n of nodes) n.app.cleanup();
  return synced!;
}

const BASE: Op[] = [{ type: "mkdir", path: "nodes" }, { type: "create", path: "a.cfg" }];

Deno.test("follower entries the leader lacks are deleted; same inode, other content is replaced (13.15)", () => {
  using leader = node(1, [
    ...BASE,
    { type: "write", path: "a.cfg", offset: 0, data: enc("leader\n"), truncate: true },
    { type: "mkdir", path: "nodes/n1" },
    { type: "create", path: "nodes/n1/x" },
  ]);
  using follower = node(2, [
    ...BASE,
    { type: "create", path: "only-here" }, // inode 4, which the leader does not have
    { type: "write", path: "a.cfg", offset: 0, data: enc("follower\n"), truncate: true },
  ]);
  assertEquals(round([follower, leader]), [leader.member]);
  assertEquals(index(follower.db), index(leader.db));
  assertEquals(follower.db.memdb.lookup("only-here"), undefined);
  assertEquals(follower.db.memdb.read("a.cfg"), enc("leader\n"));
  assert(follower.db.memdb.lookup("nodes/n1/x"));
  assertEquals(follower.confs, [false]);
  assertEquals(leader.confs, []);
  // The commit names what it takes from the follower (Quirk C1's recommendation).
  assertEquals(follower.ctx.logs.slice(-3), [
    "notice: update complete - trying to commit (got 4 inode updates)",
    "notice: resync removes local 'only-here'",
    "notice: resync replaces local 'a.cfg'",
  ]);
});

Deno.test("three members, two unsynced: each entry sent once, both followers commit the same tree (13.16)", () => {
  using a = node(1, [...BASE]);
  using b = node(2, [...BASE, { type: "mkdir", path: "b" }, { type: "mkdir", path: "b2" }, {
    type: "mkdir",
    path: "b3",
  }]);
  using c = node(3, [...BASE, { type: "mkdir", path: "c" }]);
  assertEquals(round([a, b, c]), [b.member]);
  assertEquals(b.ctx.logs.slice(0, 2), [
    "notice: leader is 2/200",
    "notice: synced members: 2/200",
  ]);
  // root, b, b2, b3 (inodes 0, 4, 5, 6): the union, once each.
  assertEquals(b.ctx.updates.length, 4);
  assertEquals(index(a.db), index(b.db));
  assertEquals(index(c.db), index(b.db));
  assertEquals(c.db.memdb.lookup("c"), undefined);
});

Deno.test("identical members are all synced and the leader sends no update (13.12)", () => {
  using a = node(1, [...BASE]);
  using b = node(2, [...BASE]);
  assertEquals(round([b, a]), [a.member, b.member]);
  assertEquals([a.ctx.updates.length, a.ctx.completes, b.ctx.completes], [0, 1, 0]);
});

Deno.test("a commit that does not reach the leader's index rolls back; the error flag sticks only after 3 failures (C11)", () => {
  using leader = node(1, [...BASE, { type: "mkdir", path: "l" }]);
  using follower = node(2, [...BASE]);
  const before = index(follower.db);
  const states = [leader, follower].map((n) => ({
    member: n.member,
    state: n.app.getState(n.ctx)!,
  }));
  leader.app.processStates(leader.ctx, states);
  for (let i = 1; i <= 3; i++) {
    follower.app.getState(follower.ctx);
    follower.app.processStates(follower.ctx, states);
    // The root update only: the new directory is missing.
    assert(follower.app.processUpdate(follower.ctx, leader.member, leader.ctx.updates[0]));
    assertEquals(follower.app.commit(follower.ctx), false);
    assertEquals(
      follower.ctx.logs.at(-1),
      "crit: new index does not match master index - internal error",
    );
    assertEquals(index(follower.db), before);
    assertEquals(follower.db.memdb.errors, i === 3);
  }
  assertEquals(follower.confs, []);
});

Deno.test("malformed states and updates are refused with the C log lines", () => {
  using a = node(1, [...BASE]);
  const good = a.app.getState(a.ctx)!;
  const r = a.app.processStates(a.ctx, [
    { member: a.member, state: good },
    { member: { nodeid: 2, pid: 2 }, state: good.subarray(0, good.length - 40) },
  ]);
  assertEquals(r, "error");
  assertEquals(a.ctx.logs.at(-1), "crit: received mailformed memdb index (len != idx->bytes)");
  assertEquals(a.app.processUpdate(a.ctx, a.member, new Uint8Array(40)), false);
  assertEquals(a.ctx.logs.at(-1), "crit: received short message (msg_len < 40)");
  assertEquals(a.app.commit(a.ctx), false);
});

Deno.test("an UPDATE from another member than the leader is accepted and logged (C23)", () => {
  using a = node(1, [...BASE]);
  using b = node(2, [...BASE, { type: "mkdir", path: "x" }]);
  const states = [a, b].map((n) => ({ member: n.member, state: n.app.getState(n.ctx)! }));
  assertEquals(a.app.processStates(a.ctx, states), { synced: [b.member] });
  b.app.processStates(b.ctx, states);
  const update = b.ctx.updates[0];
  assert(a.app.processUpdate(a.ctx, { nodeid: 3, pid: 3 }, update));
  assert(a.ctx.logs.at(-1)!.startsWith("crit: received update from 3/3, not from the leader"));
});

Deno.test("a leader whose index names an inode its tree lacks fails the round", () => {
  using a = node(1, [...BASE]);
  using b = node(2, [...BASE]);
  const idx = a.db.memdb.index();
  const lying = encodeIndex({
    ...idx,
    version: 99,
    lastInode: 77,
    entries: [...idx.entries, { inode: 77, digest: new Uint8Array(32) }],
  });
  const states = [
    { member: a.member, state: lying },
    { member: b.member, state: b.app.getState(b.ctx)! },
  ];
  assertEquals(a.app.processStates(a.ctx, states), "error");
  assertEquals(a.ctx.logs.at(-1), "crit: can get inode data for inode 000000000000004D");
  assertEquals(a.ctx.completes, 0);
});

Deno.test("checksum is the tree checksum; getState is the index", () => {
  using a = node(1, [...BASE]);
  assertEquals(a.app.checksum(), a.db.memdb.treeChecksum());
  assertEquals(a.app.getState(a.ctx), index(a.db));
  // The root row travels with an empty name.
  const root = a.db.memdb.byInodeNumber(0)!;
  assertEquals(encodeUpdate({ ...root, name: "" }).length, 42);
});

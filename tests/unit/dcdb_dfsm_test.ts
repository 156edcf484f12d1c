/**
 * DcdbApp under the real DFSM core on a small simulated CPG bus, over real databases: a rejoin
 * round (cluster spec 4.7 with 5.8-5.11, section 13 case 14), a write from a joining node
 * applied after the commit (case 18) and writes from both nodes once synced (case 8).
 * Depends on src/dfsm/dfsm.ts (the generic core), which this directory does not own.
 */
import { assert, assertEquals } from "./assert.ts";
import { freshDb } from "./helpers.ts";
import { HandBus } from "./dcdb_fakes.ts";
import { Dfsm } from "../../src/dfsm/dfsm.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import { senderMessages } from "../../src/dcdb/apply.ts";
import { decodeUpdate, encodeFuseMessage, type FuseOp } from "../../src/dcdb/codec.ts";
import { encodeIndex } from "../../src/memdb/checksum.ts";
import { Errno } from "../../src/util/errno.ts";
import { Mode } from "../../src/dfsm/types.ts";
import type { DfsmEffect, MemberId, SendOutcome } from "../../src/dfsm/types.ts";
import type { Op } from "../../src/memdb/op.ts";
import type { Database } from "../../src/store/database.ts";

const T = 1795561423;
const DCDB = { groupName: "pve_dcdb_v1", protocolVersion: 1, domain: "dcdb", verifyPeriod: 3600 };
const enc = (s: string) => new TextEncoder().encode(s);

interface Node {
  id: MemberId;
  db: Database;
  app: DcdbApp;
  core: Dfsm;
  logs: string[];
  mcasts: Uint8Array[];
  done: Map<number, SendOutcome>;
  [Symbol.dispose](): void;
}

class Bus extends HandBus<Node> {
  constructor() {
    super(T);
  }

  protected override effects(n: Node, eff: DfsmEffect[]): void {
    for (const e of eff) {
      if (e.type === "mcast") n.mcasts.push(e.bytes);
      else if (e.type === "complete") n.done.set(e.ticket, e.outcome);
      else if (e.type === "log") n.logs.push(`${e.level}: ${e.text}`);
    }
  }

  node(nodeid: number, pid: number, ops: Op[]): Node {
    const h = freshDb(T - 100);
    ops.forEach((op, i) => {
      assertEquals(h.db.apply(op, { writer: 1, mtime: T - 50 + i }).errno, 0, JSON.stringify(op));
    });
    const id = { nodeid, pid };
    const app = new DcdbApp(h.db, { quorate: () => true, self: () => id });
    const n: Node = {
      id,
      db: h.db,
      app,
      core: new Dfsm(DCDB, app),
      logs: [],
      mcasts: [],
      done: new Map(),
      [Symbol.dispose]: () => h[Symbol.dispose](),
    };
    this.step(n, { type: "initialised", now: this.now, nodeid, pid });
    return n;
  }

  send(n: Node, op: FuseOp, ticket: number): void {
    const { subtype, payload } = encodeFuseMessage(op);
    this.step(n, { type: "send", now: this.now, subtype, payload, ticket, preset: -Errno.EBUSY });
  }
}

const index = (db: Database) => encodeIndex(db.memdb.index());

const COMMON: Op[] = [
  { type: "mkdir", path: "nodes" },
  { type: "mkdir", path: "nodes/node1" },
  { type: "create", path: "datacenter.cfg" },
];
const LEADER_ONLY: Op[] = [
  { type: "mkdir", path: "nodes/node2" },
  { type: "create", path: "user.cfg" },
  {
    type: "write",
    path: "user.cfg",
    offset: 0,
    data: enc("user:root@pam:1:0::::::\n"),
    truncate: true,
  },
];

Deno.test("rejoin round under the DFSM core: the follower commits the leader's tree", () => {
  const bus = new Bus();
  using n1 = bus.node(1, 10701, [...COMMON, ...LEADER_ONLY]);
  using n2 = bus.node(2, 10829, [...COMMON, { type: "create", path: "stale.cfg" }]);
  bus.join(n1);
  bus.run();
  assertEquals(n1.core.mode, Mode.SYNCED);
  bus.join(n2);
  bus.run();
  assertEquals([n1.core.mode, n2.core.mode], [Mode.SYNCED, Mode.SYNCED]);
  assertEquals(index(n2.db), index(n1.db));
  assertEquals(n2.db.memdb.lookup("stale.cfg"), undefined);
  assert(n1.logs.includes("notice: leader is 1/10701"), n1.logs.join("\n"));
  assert(n1.logs.includes("notice: synced members: 1/10701"));
  // root, node2 (inode 5, which is stale.cfg on the follower) and user.cfg (inode 6).
  const updates = n1.mcasts.filter((b) => b[0] === 3).map((b) => decodeUpdate(b.subarray(32)));
  assertEquals(updates.map((u) => u.ok && u.value.inode), [0, 5, 6]);
  assert(n1.logs.includes("notice: sent all (3) updates"));
  assert(n2.logs.includes("notice: update complete - trying to commit (got 3 inode updates)"));
});

Deno.test("a write from a joining node is applied after the commit and gets that result (13.18)", () => {
  const bus = new Bus();
  using a = bus.node(1, 10701, [...COMMON, ...LEADER_ONLY]);
  using b = bus.node(2, 10829, [...COMMON]);
  bus.join(a);
  bus.run();
  bus.join(b);
  // The confchg only (node1 multicasts SYNC_START), then node2 creates user.cfg.
  bus.deliverOne();
  assertEquals(b.core.mode, Mode.START_SYNC);
  bus.send(b, { type: "create", path: "user.cfg" }, 1);
  bus.run();
  assertEquals(b.done.get(1), { processed: true, result: -Errno.EEXIST });
  assertEquals(index(a.db), index(b.db));
  // Once synced, writes from both nodes apply everywhere with the sender as writer.
  bus.send(b, { type: "mkdir", path: "nodes/node3" }, 2);
  bus.send(a, {
    type: "write",
    path: "datacenter.cfg",
    offset: 0,
    data: enc("keyboard: de\n"),
    truncate: true,
  }, 3);
  bus.run();
  assertEquals(b.done.get(2), { processed: true, result: 0 });
  assertEquals(a.done.get(3), { processed: true, result: 13 });
  assertEquals(index(a.db), index(b.db));
  assertEquals(a.db.memdb.lookup("nodes/node3")!.writer, 2);
  assertEquals(b.db.memdb.lookup("datacenter.cfg")!.writer, 1);
});

Deno.test("unlock under the DFSM core: node 1 (lowest) unlocks an expired lock for everyone (13.27)", () => {
  const bus = new Bus();
  const base: Op[] = [{ type: "mkdir", path: "priv" }, { type: "mkdir", path: "priv/lock" }];
  using n1 = bus.node(1, 101, base);
  using n2 = bus.node(2, 202, base);
  using n3 = bus.node(3, 303, base);
  for (const n of [n3, n2, n1]) bus.join(n);
  bus.run();
  assert([n1, n2, n3].every((n) => n.core.mode === Mode.SYNCED));
  const t = bus.now;
  bus.send(n2, { type: "mkdir", path: "priv/lock/ha" }, 1);
  bus.run();
  assertEquals(n2.done.get(1), { processed: true, result: 0 });

  const request = (ticket: number) => {
    for (const m of senderMessages(n3.db.memdb, { type: "unlockRequest", path: "priv/lock/ha" })) {
      bus.step(n3, {
        type: "send",
        now: bus.now,
        subtype: m.subtype,
        payload: m.payload,
        ticket: m.wait ? ticket : undefined,
        preset: -Errno.EBUSY,
      });
    }
    bus.run();
  };
  bus.now = t + 60;
  request(2);
  assertEquals(n3.done.get(2), { processed: true, result: -Errno.EACCES });
  assert(n1.db.memdb.lookup("priv/lock/ha"));
  bus.now = t + 121;
  request(3);
  assertEquals(n3.done.get(3), { processed: true, result: -Errno.EACCES }); // MTIME 0 came first
  for (const n of [n1, n2, n3]) {
    assertEquals(n.db.memdb.lookup("priv/lock/ha"), undefined);
    assertEquals([n.db.memdb.root.writer, n.db.memdb.root.mtime], [1, t + 121]);
  }
  assertEquals(index(n1.db), index(n3.db));
  // Only node 1 sent an UNLOCK (subtype 8).
  const unlocks = (n: Node) => n.mcasts.filter((b) => b[0] === 0 && b[2] === 8).length;
  assertEquals([unlocks(n1), unlocks(n2), unlocks(n3)], [1, 0, 0]);
});

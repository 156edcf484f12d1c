/**
 * The cluster-mode committer (src/dcdb/committer.ts): op -> message(s), the errno of spec 5.4
 * per outcome, several ops answered once (first error in op order), the unlock request pair;
 * and one member end to end through the real driver, core and database.
 */
import { assert, assertEquals } from "./assert.ts";
import { freshDb } from "./helpers.ts";
import { DcdbCommitter, outcomeErrno } from "../../src/dcdb/committer.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import { DcdbMsg, decodeFuseMessage } from "../../src/dcdb/codec.ts";
import { Dfsm } from "../../src/dfsm/dfsm.ts";
import { GroupDriver } from "../../src/dfsm/driver.ts";
import { CS, type SendOutcome } from "../../src/dfsm/types.ts";
import { Errno } from "../../src/util/errno.ts";
import type { Op } from "../../src/memdb/op.ts";

const T = 1795561400;

interface Sent {
  subtype: number;
  payload: Uint8Array;
  preset?: number;
  resolve?: (o: SendOutcome) => void;
}

/** A committer over a fake driver that records sends; outcomes are given by the test. */
function fake(quorate = true) {
  const h = freshDb(T);
  const sent: Sent[] = [];
  const driver = {
    send(subtype: number, payload: Uint8Array, cb?: (o: SendOutcome) => void, preset?: number) {
      sent.push({ subtype, payload, preset, resolve: cb });
      return cb ? sent.length : 0;
    },
  };
  const c = new DcdbCommitter(driver, h.db, { quorate: () => quorate });
  return { h, sent, c, [Symbol.dispose]: () => h[Symbol.dispose]() };
}

const ok = (result: number): SendOutcome => ({ processed: true, result });
const mkdir = (path: string): Op => ({ type: "mkdir", path });

Deno.test("committer: the errno of each outcome (spec 5.4)", () => {
  assertEquals(outcomeErrno(ok(0)), 0);
  assertEquals(outcomeErrno(ok(4000)), 0); // bytes written
  assertEquals(outcomeErrno(ok(-Errno.EEXIST)), Errno.EEXIST);
  assertEquals(outcomeErrno(ok(-1)), Errno.EPERM); // rejected: the slot gets -1 (C12)
  assertEquals(outcomeErrno({ processed: false, reason: "sendFailed" }), Errno.EBUSY);
  assertEquals(outcomeErrno({ processed: false, reason: "aborted" }), Errno.EBUSY);
});

Deno.test("committer: without quorum EACCES at once, nothing sent", () => {
  using f = fake(false);
  const got: number[] = [];
  f.c.commit([mkdir("a")], (e) => got.push(e));
  assertEquals(got, [Errno.EACCES]);
  assertEquals(f.sent.length, 0);
});

Deno.test("committer: one op is one waiting message preset to -EBUSY; done when it completes", () => {
  using f = fake();
  const got: number[] = [];
  f.c.commit([mkdir("a")], (e) => got.push(e));
  assertEquals(f.sent.length, 1);
  assertEquals(f.sent[0].subtype, DcdbMsg.Mkdir);
  assertEquals(f.sent[0].preset, -Errno.EBUSY);
  const op = decodeFuseMessage(f.sent[0].subtype, f.sent[0].payload);
  assert(op.ok && op.value.type === "mkdir" && op.value.path === "a");
  assertEquals(got, []);
  f.sent[0].resolve!(ok(-Errno.EEXIST));
  assertEquals(got, [Errno.EEXIST]);
});

Deno.test("committer: several ops go back to back, one answer after the last, first error in op order", () => {
  using f = fake();
  const got: number[] = [];
  const w = (off: number): Op => ({
    type: "write",
    path: "f",
    offset: off,
    data: new Uint8Array([1, 2]),
    truncate: false,
  });
  f.c.commit([w(0), w(2), w(4)], (e) => got.push(e));
  assertEquals(f.sent.length, 3);
  f.sent[2].resolve!(ok(-Errno.EFBIG));
  f.sent[1].resolve!({ processed: false, reason: "aborted" });
  assertEquals(got, []);
  f.sent[0].resolve!(ok(2));
  assertEquals(got, [Errno.EBUSY]);
});

Deno.test("committer: completions during the sends (failed at once) still answer once, after all", () => {
  using f = fake();
  const got: number[] = [];
  const driver = {
    send(_s: number, _p: Uint8Array, cb?: (o: SendOutcome) => void) {
      cb?.({ processed: false, reason: "sendFailed" });
      return 1;
    },
  };
  const c = new DcdbCommitter(driver, f.h.db, { quorate: () => true });
  c.commit([mkdir("a"), mkdir("b")], (e) => got.push(e));
  assertEquals(got, [Errno.EBUSY]);
});

Deno.test("committer: utime 0 on a lock directory sends UNLOCK_REQUEST (no wait), then MTIME 0", () => {
  using f = fake();
  for (const p of ["priv", "priv/lock", "priv/lock/L1"]) {
    assertEquals(f.h.db.apply(mkdir(p), { writer: 1, mtime: T, now: T }).errno, 0);
  }
  const got: number[] = [];
  f.c.commit([{ type: "unlockRequest", path: "priv/lock/L1" }], (e) => got.push(e));
  assertEquals(f.sent.map((s) => [s.subtype, !!s.resolve]), [
    [DcdbMsg.UnlockRequest, false],
    [DcdbMsg.Mtime, true],
  ]);
  f.sent[1].resolve!(ok(-Errno.EACCES));
  assertEquals(got, [Errno.EACCES]);
});

Deno.test("committer: one member end to end through driver, core and database", () => {
  using h = freshDb(T);
  const self = { nodeid: 1, pid: 77 };
  const app = new DcdbApp(h.db, { quorate: () => true, self: () => self });
  const core = new Dfsm(
    { groupName: "pve_dcdb_v1", protocolVersion: 1, domain: "dcdb", verifyPeriod: 3600 },
    app,
  );
  const wire: Uint8Array[] = [];
  const driver = new GroupDriver(core, {
    mcast: (b) => (wire.push(b), CS.OK),
    leave: () => {},
    serviceDown: () => {},
  }, { now: () => T });
  const c = new DcdbCommitter(driver, h.db, { quorate: () => true });
  driver.initialise(1, 77);
  driver.confchg([self], [], [self]);
  const got: number[] = [];
  c.commit([mkdir("a")], (e) => got.push(e));
  c.commit([mkdir("a")], (e) => got.push(e));
  c.commit([{ type: "create", path: "a/f" }], (e) => got.push(e));
  c.commit([
    { type: "write", path: "a/f", offset: 0, data: new Uint8Array([65]), truncate: true },
    { type: "write", path: "a/f", offset: 1, data: new Uint8Array([66]), truncate: false },
  ], (e) => got.push(e));
  assertEquals(got, []);
  for (const b of wire.splice(0)) driver.deliver(self, b);
  assertEquals(got, [0, Errno.EEXIST, 0, 0]);
  assertEquals(new TextDecoder().decode(h.db.memdb.read("a/f") as Uint8Array), "AB");
});

/**
 * The group driver (src/dfsm/driver.ts): outbox order, TRY_AGAIN retries and their limit,
 * permanent send failures, deliveries held behind an event's messages (spec 10.4), tickets,
 * leave / service down passed on in order, finalise and initialise timing.
 */
import { assert, assertEquals } from "./assert.ts";
import { DCDB, LogApp, REJECT } from "./dfsm_harness.ts";
import { Dfsm } from "../../src/dfsm/dfsm.ts";
import { GroupDriver } from "../../src/dfsm/driver.ts";
import { decodeMessage, isNormal, MsgType } from "../../src/dfsm/codec.ts";
import { CS, type MemberId, Mode, type SendOutcome } from "../../src/dfsm/types.ts";

const te = new TextEncoder();
const T = 1795561400;

/** A driver over a LogApp with a scripted transport. */
function setup(nodeid = 1, pid = 100) {
  const self: MemberId = { nodeid, pid };
  const app = new LogApp(() => self);
  const core = new Dfsm(DCDB, app);
  const calls: string[] = [];
  const sent: Uint8Array[] = [];
  const answers: number[] = []; // next mcast results (default OK)
  const logs: string[] = [];
  let now = T;
  const driver = new GroupDriver(core, {
    mcast(bytes) {
      const rc = answers.shift() ?? CS.OK;
      calls.push(`mcast ${rc}`);
      if (rc === CS.OK) sent.push(bytes);
      return rc;
    },
    leave: () => calls.push("leave"),
    serviceDown: (r) => calls.push(`serviceDown ${r}`),
  }, {
    now: () => now,
    log: (d, l, t) => logs.push(`${d} ${l}: ${t}`),
  });
  return {
    self,
    app,
    core,
    driver,
    calls,
    sent,
    answers,
    logs,
    tick(s: number) {
      now += s;
    },
    /** Delivers everything sent so far to this node itself (a one-member ring). */
    loopback() {
      const out = sent.splice(0);
      for (const b of out) driver.deliver(self, b);
    },
  };
}

function type(b: Uint8Array): number {
  const m = decodeMessage(b);
  if (!m.ok) throw new Error("decode");
  return m.msg.type;
}

function alone(s: ReturnType<typeof setup>) {
  s.driver.initialise(s.self.nodeid, s.self.pid);
  s.driver.confchg([s.self], [], [s.self]);
  assertEquals(s.core.mode, Mode.SYNCED);
}

Deno.test("driver: a waiting send gets the result of its own delivered message", () => {
  const s = setup();
  alone(s);
  const out: SendOutcome[] = [];
  const ticket = s.driver.send(7, te.encode("a"), (o) => out.push(o));
  assert(ticket > 0);
  assertEquals(s.sent.length, 1);
  assertEquals(s.driver.waiting, 1);
  s.loopback();
  assertEquals(out, [{ processed: true, result: 1 }]);
  assertEquals(s.driver.waiting, 0);
  assertEquals(s.driver.send(7, te.encode("b")), 0); // no outcome wanted: no ticket
});

Deno.test("driver: TRY_AGAIN keeps the message and those behind it queued, in order", () => {
  const s = setup();
  alone(s);
  s.answers.push(CS.ERR_TRY_AGAIN, CS.ERR_TRY_AGAIN);
  s.driver.send(7, te.encode("a"));
  s.driver.send(7, te.encode("b"));
  assertEquals(s.driver.outboxLength, 2);
  assertEquals(s.sent.length, 0);
  assertEquals(s.driver.flush(), "retry");
  assertEquals(s.driver.flush(), "idle");
  assertEquals(s.driver.outboxLength, 0);
  const counts = s.sent.map((b) => {
    const m = decodeMessage(b);
    return m.ok && isNormal(m.msg) ? m.msg.count : -1;
  });
  assertEquals(counts, [1, 2]);
});

Deno.test("driver: 100 TRY_AGAINs fail the message (EBUSY path), the next one goes out", () => {
  const s = setup();
  alone(s);
  for (let i = 0; i < 100; i++) s.answers.push(CS.ERR_TRY_AGAIN);
  const out: SendOutcome[] = [];
  s.driver.send(7, te.encode("a"), (o) => out.push(o));
  s.driver.send(7, te.encode("b"));
  while (s.driver.flush() === "retry");
  assertEquals(s.calls.filter((c) => c === "mcast 6").length, 100);
  assertEquals(out, [{ processed: false, reason: "sendFailed" }]);
  assertEquals(s.sent.length, 1);
  assert(s.logs.includes("dcdb notice: cpg_send_message retry 10"));
  assert(s.logs.includes("dcdb notice: cpg_send_message retried 100 times"));
  assert(s.logs.includes("dcdb crit: cpg_send_message failed: 6"));
});

Deno.test("driver: a permanent failure fails at once and feeds sendFailed to the core", () => {
  const s = setup();
  alone(s);
  s.answers.push(CS.ERR_NOT_EXIST);
  const out: SendOutcome[] = [];
  s.driver.send(7, te.encode("a"), (o) => out.push(o));
  assertEquals(out, [{ processed: false, reason: "sendFailed" }]);
  assertEquals(s.driver.outboxLength, 0);
  assert(s.logs.includes("dcdb crit: cpg_send_message failed: 12"));
});

Deno.test("driver: deliveries wait while an event's messages are not handed over (10.4)", () => {
  const s = setup(1, 100);
  const other = { nodeid: 2, pid: 200 };
  s.driver.initialise(1, 100);
  s.driver.confchg([s.self], [], [s.self]);
  // node 2 joins: the lowest (us) multicasts SYNC_START from the confchg step; corosync is busy
  s.answers.push(CS.ERR_TRY_AGAIN);
  s.driver.confchg([s.self, other], [], [other]);
  assertEquals(s.core.mode, Mode.START_SYNC);
  assertEquals(s.driver.outboxLength, 1);
  // a message of node 2 arrives meanwhile: held, the core does not see it yet
  const before = s.app.calls.length;
  s.driver.deliver(other, new Uint8Array([1, 2, 3]));
  assertEquals(s.driver.heldLength, 1);
  assertEquals(s.app.calls.length, before);
  assert(!s.driver.idle);
  // SYNC_START goes out, then the held (short, invalid) message reaches the core
  assertEquals(s.driver.flush(), "idle");
  assertEquals(type(s.sent[0]), MsgType.SYNC_START);
  assertEquals(s.driver.heldLength, 0);
  assert(s.logs.some((l) => l.includes("short") || l.includes("dcdb crit")), s.logs.join("\n"));
});

Deno.test("driver: an application send stuck in TRY_AGAIN does not hold deliveries", () => {
  const s = setup();
  alone(s);
  s.answers.push(CS.ERR_TRY_AGAIN);
  s.driver.send(7, te.encode("a"));
  assertEquals(s.driver.outboxLength, 1);
  s.driver.confchg([s.self, { nodeid: 2, pid: 1 }], [], [{ nodeid: 2, pid: 1 }]);
  assertEquals(s.driver.heldLength, 0);
  assertEquals(s.core.mode, Mode.START_SYNC);
  // FIFO: the application's message first, then the SYNC_START of the confchg
  assertEquals(s.driver.flush(), "idle");
  assertEquals(s.sent.map(type), [MsgType.NORMAL, MsgType.SYNC_START]);
});

Deno.test("driver: a rejected own message: EPERM slot, leave, then service down at the next confchg", () => {
  const s = setup();
  alone(s);
  const out: SendOutcome[] = [];
  s.driver.send(REJECT, te.encode("x"), (o) => out.push(o), -16);
  s.loopback();
  assertEquals(out, [{ processed: true, result: -1 }]);
  assertEquals(s.core.mode, Mode.LEAVE);
  assertEquals(s.calls, ["mcast 1", "leave"]);
  s.driver.confchg([], [s.self], []); // our own leave confchg
  assertEquals(s.calls, ["mcast 1", "leave", "serviceDown true"]);
  assertEquals(s.driver.lastInitialised, T);
  assertEquals(s.driver.nextInitAt(T + 1), T + 6);
  assertEquals(s.driver.nextInitAt(T + 9), T + 9);
  s.tick(6);
  s.driver.initialise(1, 100);
  assertEquals(s.core.mode, Mode.START);
  assertEquals(s.driver.lastInitialised, T + 6);
});

Deno.test("driver: leave waits behind the mcasts of its step", () => {
  const s = setup();
  alone(s);
  s.answers.push(CS.ERR_TRY_AGAIN);
  s.driver.send(7, te.encode("a")); // stuck
  s.driver.deliver(s.self, encodeOwnReject(s));
  // the rejection of the delivered message queues a leave behind the stuck mcast
  assertEquals(s.calls, ["mcast 6"]);
  s.driver.flush();
  assertEquals(s.calls, ["mcast 6", "mcast 1", "leave"]);
});

/** An own REJECT message as corosync would deliver it (count 1). */
function encodeOwnReject(s: ReturnType<typeof setup>): Uint8Array {
  const probe = setup(s.self.nodeid, s.self.pid);
  alone(probe);
  probe.driver.send(REJECT, te.encode("r"));
  return probe.sent[0];
}

Deno.test("driver: finalise fails the outbox, aborts waiters; no event is held any more", () => {
  const s = setup();
  alone(s);
  s.answers.push(CS.ERR_TRY_AGAIN);
  const out: SendOutcome[] = [];
  s.driver.send(7, te.encode("a"), (o) => out.push(o));
  s.driver.send(7, te.encode("b"), (o) => out.push(o));
  s.driver.finalise();
  assertEquals(out, [
    { processed: false, reason: "sendFailed" },
    { processed: false, reason: "sendFailed" },
  ]);
  assert(s.driver.idle);
  assert(!s.core.joined);
  // a send now fails at once (no handle)
  s.driver.send(7, te.encode("c"), (o) => out.push(o));
  assertEquals(out.length, 3);
});

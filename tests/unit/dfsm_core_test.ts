/** The DFSM core (cluster spec 4) on a hand-driven bus with a fake application. */
import { assert, assertEquals } from "./assert.ts";
import {
  Bus,
  clearEffects,
  DCDB,
  KV,
  logs,
  mcasts,
  REJECT,
  STORAGE_ERROR,
} from "./dfsm_harness.ts";
import {
  decodeMessage,
  encodeNormal,
  encodeState,
  isNormal,
  MsgType,
  type StateMessage,
} from "../../src/dfsm/codec.ts";
import { Mode } from "../../src/dfsm/types.ts";

function decode(b: Uint8Array) {
  const r = decodeMessage(b);
  if (!r.ok) throw new Error("decode");
  return r.msg;
}

function types(bytes: Uint8Array[]): number[] {
  return bytes.map((b) => decode(b).type);
}

/** A settled group of `n` members (nodeids 1..n), all SYNCED. */
function group(n: number, bus = new Bus()) {
  const nodes = Array.from({ length: n }, (_, i) => bus.add(i + 1));
  for (const node of nodes) {
    bus.join(node);
    bus.run();
  }
  for (const node of nodes) assertEquals(node.core.mode, Mode.SYNCED, node.name);
  return { bus, nodes };
}

Deno.test("single member: SYNCED at once, no SYNC_START (spec 4.3 step 10)", () => {
  const bus = new Bus();
  const a = bus.add(1, 10701);
  bus.join(a);
  bus.run();
  assertEquals(logs(a), ["notice members: 1/10701", "notice all data is up to date"]);
  assertEquals(mcasts(a).length, 0);
  assertEquals(a.core.mode, Mode.SYNCED);
});

Deno.test("two identical members: the lowest sends SYNC_START, both synced, 0 updates (case 12)", () => {
  const bus = new Bus();
  const a = bus.add(1, 10701);
  bus.join(a);
  bus.run();
  const b = bus.add(2, 10702);
  clearEffects(a);
  bus.join(b);
  bus.run();
  assertEquals(logs(a), [
    "notice members: 1/10701, 2/10702",
    "notice starting data syncronisation",
    "notice received sync request (epoch 1/10701/00000002)",
    "notice received all states",
    "notice all data is up to date",
  ]);
  assertEquals(logs(b), [
    "notice members: 1/10701, 2/10702",
    "notice starting data syncronisation",
    "notice received sync request (epoch 1/10701/00000002)",
    "notice received all states",
    "notice all data is up to date",
  ]);
  // node1: SYNC_START, STATE, UPDATE_COMPLETE (leader, nothing to update); node2: STATE only
  assertEquals(types(mcasts(a)), [1, 2, 4]);
  assertEquals(types(mcasts(b)), [2]);
  const ss = decode(mcasts(a)[0]) as StateMessage;
  assertEquals(ss.epoch, { counter: 2, time: bus.now, nodeid: 1, pid: 10701 });
  assertEquals(mcasts(a)[0].length, 32);
  assertEquals(b.core.syncEpoch, ss.epoch);
});

Deno.test("a member that is behind goes UPDATE, then SYNCED after UPDATE_COMPLETE (3 members)", () => {
  const { bus, nodes: [a, b] } = group(2);
  bus.send(a, "x");
  bus.send(b, "y");
  bus.run();
  const c = bus.add(3);
  clearEffects(a, b, c);
  bus.join(c);
  bus.run();
  assertEquals(logs(c), [
    "notice members: 1/101, 2/102, 3/103",
    "notice starting data syncronisation",
    "notice received sync request (epoch 1/101/00000003)",
    "notice received all states",
    "notice waiting for updates from leader",
    "notice all data is up to date",
  ]);
  assertEquals(c.app.calls.filter((x) => x.startsWith("commit")), ["commit 2"]);
  assertEquals(c.app.log, a.app.log);
  assertEquals(b.app.log, a.app.log);
  assertEquals(types(mcasts(a)), [1, 2, 3, 3, 4]);
  for (const n of [a, b, c]) assertEquals(n.core.mode, Mode.SYNCED);
  for (const n of [a, b, c]) assert(n.core.members.every((m) => m.synced && !m.state));
});

Deno.test("queued messages are replayed in per-sender count order on every member (C3, case 17)", () => {
  const { bus, nodes: [a, b, c] } = group(3);
  // counts: A reaches 7, B 2, C 5
  for (let i = 0; i < 6; i++) bus.send(a, `a${i}`);
  bus.send(b, "b0");
  for (let i = 0; i < 4; i++) bus.send(c, `c${i}`);
  bus.run();
  const d = bus.add(4);
  bus.join(d);
  bus.deliverOne(); // the confchg: everyone in START_SYNC, SYNC_START queued on the bus
  assertEquals(a.core.mode, Mode.START_SYNC);
  // total order A(7), B(2), C(5): all queued during START_SYNC
  bus.send(a, "A7", 1);
  bus.send(b, "B2", 2);
  bus.send(c, "C5", 3);
  bus.run();
  for (const n of [a, b, c, d]) {
    assertEquals(n.core.mode, Mode.SYNCED, n.name);
    assertEquals(n.app.log.slice(-3), ["2:B2", "3:C5", "1:A7"], n.name);
  }
  assertEquals(d.app.log, a.app.log);
  // the senders' callers receive their own node's results
  assertEquals(a.completions.get(1), { processed: true, result: 14 });
  assertEquals(b.completions.get(2), { processed: true, result: 12 });
  assertEquals(c.completions.get(3), { processed: true, result: 13 });
  assert(logs(a).includes("notice dfsm_deliver_queue: queue length 3"));
  // d (unsynced) moved them to its sync_queue and replayed them after the commit
  assert(logs(d).includes("notice dfsm_deliver_sync_queue: queue length 3"));
});

Deno.test("resend on join: own queued messages re-multicast byte-identically, queue dropped (C5, case 19)", () => {
  const bus = new Bus();
  const a = bus.add(1);
  bus.join(a);
  bus.run();
  const b = bus.add(2);
  bus.join(b);
  bus.deliverOne(); // confchg {1,2}: START_SYNC, SYNC_START on the bus
  bus.send(b, "m", 9); // delivered in START_SYNC: queued at both
  const original = mcasts(b).at(-1)!;
  const c = bus.add(3);
  bus.join(c); // confchg with a joiner while the queue holds b's message
  bus.run();
  assert(logs(a).includes("notice queue not emtpy - resening 1 messages"));
  assert(logs(b).includes("notice queue not emtpy - resening 1 messages"));
  const bm = mcasts(b);
  const copies = bm.filter((x) =>
    x.length === original.length && x.every((v, i) => v === original[i])
  );
  assertEquals(copies.length, 2, "original and its byte-identical resend");
  // a did not resend b's message
  assert(!mcasts(a).some((x) => isNormal(decode(x))));
  for (const n of [a, b, c]) assertEquals(n.app.log, ["2:m"], n.name);
  assertEquals(b.completions.get(9), { processed: true, result: 1 });
});

Deno.test("own result slots: processed result, EPERM on reject, LEAVE, service down, rejoin (C12, case 23)", () => {
  const { bus, nodes: [a, b] } = group(2);
  bus.send(b, "ok", 1);
  bus.run();
  assertEquals(b.completions.get(1), { processed: true, result: 1 });
  bus.send(b, "bad", 2, REJECT);
  bus.run();
  assertEquals(b.completions.get(2), { processed: true, result: -1 });
  for (const n of [a, b]) {
    assert(logs(n).includes("crit leaving CPG group"), n.name);
    assert(n.effects.some((e) => e.type === "serviceDown" && e.restartable), n.name);
    assert(n.effects.some((e) => e.type === "leaveGroup"), n.name);
  }
  // both left; rejoin
  bus.reinit(a);
  bus.reinit(b);
  bus.run();
  assert(logs(a).includes("notice start cluster connection"));
  for (const n of [a, b]) assertEquals(n.core.mode, Mode.SYNCED, n.name);
  // counts continue after the rejoin (case 7)
  bus.send(b, "again");
  assertEquals((decode(mcasts(b).at(-1)!) as { count: number }).count, 3);
});

Deno.test("a waiter is aborted by re-initialisation and finalisation (EBUSY: not processed)", () => {
  const { bus, nodes: [a, b] } = group(2);
  const c = bus.add(3);
  bus.join(c);
  bus.deliverOne();
  bus.send(b, "queued", 5);
  bus.run(); // ...the round completes and replays it
  assertEquals(b.completions.get(5), { processed: true, result: 1 });
  // a message that never comes back
  bus.send(b, "lost", 6);
  bus.queue = [];
  assertEquals(b.core.waiting, [6]);
  bus.step(b, { type: "initialised", now: bus.now, nodeid: 2, pid: 102 });
  assertEquals(b.completions.get(6), { processed: false, reason: "aborted" });
  bus.send(a, "lost too", 7);
  const eff = bus.step(a, { type: "finalise", now: bus.now });
  assertEquals(a.completions.get(7), { processed: false, reason: "aborted" });
  assert(eff.some((e) => e.type === "leaveGroup"));
  // after finalise a send fails at once
  bus.send(a, "no handle", 8);
  assertEquals(a.completions.get(8), { processed: false, reason: "sendFailed" });
  assert(logs(a).includes("crit cpg_send_message failed: 9"));
});

Deno.test("send failures: NORMAL -> EBUSY to the caller; SYNC_START -> LEAVE; VERIFY_REQUEST logged only", () => {
  const { bus, nodes: [a] } = group(2);
  a.failSends = 1;
  bus.send(a, "x", 1);
  assertEquals(a.completions.get(1), { processed: false, reason: "sendFailed" });
  assert(logs(a).includes("crit cpg_send_message failed: 6"));
  a.failSends = 1;
  bus.timer(a);
  assert(logs(a).includes("crit failed to send VERIFY_REQUEST message"));
  assertEquals(a.core.mode, Mode.SYNCED);
  // a state message failing with TRY_AGAIN exhaustion: no "cpg_send_message failed" line
  clearEffects(a);
  const c = bus.add(3);
  a.failSends = 1;
  bus.join(c);
  bus.deliverOne();
  assertEquals(logs(a, /crit/), [
    "crit failed to send SYNC_START message",
    "crit leaving CPG group",
  ]);
  assertEquals(a.core.mode, Mode.LEAVE);
});

Deno.test("LEAVE on malformed input: short message, short state, unknown type, bad state", () => {
  const mk = () => group(2);
  const from = { nodeid: 2, pid: 102 };
  {
    const { bus, nodes: [a] } = mk();
    bus.step(a, { type: "delivered", now: bus.now, from, bytes: new Uint8Array(10) });
    assertEquals(logs(a, /crit/), [
      "crit received short message (10 bytes)",
      "crit leaving CPG group",
    ]);
    assertEquals(a.core.mode, Mode.LEAVE);
    assertEquals(a.effects.at(-1), { type: "leaveGroup" });
  }
  {
    const { bus, nodes: [a] } = mk();
    const b = encodeNormal(1, 1, 0, 1, new Uint8Array()).subarray(0, 20);
    bus.step(a, { type: "delivered", now: bus.now, from, bytes: b });
    assertEquals(logs(a, /crit/)[0], "crit received short message (20 bytes)");
  }
  {
    const { bus, nodes: [a] } = mk();
    const b = encodeState(MsgType.STATE, 1, 0, a.core.syncEpoch).subarray(0, 30);
    bus.step(a, { type: "delivered", now: bus.now, from, bytes: b });
    assertEquals(logs(a, /crit/)[0], "crit received short state message (30 bytes)");
  }
  {
    // type 7 in SYNCED is ignored; in UPDATE it is LEAVE
    const { bus, nodes: [a] } = mk();
    const b = encodeState(7, 1, 0, a.core.syncEpoch);
    bus.step(a, { type: "delivered", now: bus.now, from, bytes: b });
    assertEquals(a.core.mode, Mode.SYNCED);
    assertEquals(logs(a, /crit/), []);
  }
  {
    // a STATE in SYNCED is ignored; a STATE of a non-member in START_SYNC -> LEAVE
    const { bus, nodes: [a, b] } = mk();
    const c = bus.add(3);
    bus.join(c);
    bus.deliverOne();
    const st = encodeState(MsgType.STATE, 1, 0, b.core.syncEpoch, new Uint8Array([1]));
    bus.step(b, { type: "delivered", now: bus.now, from: { nodeid: 9, pid: 9 }, bytes: st });
    assertEquals(logs(b, /crit/)[0], "crit received state for non-member 9/9");
    // SYNC_START delivered, then the same member's STATE twice
    bus.deliverOne(); // SYNC_START from a
    const st2 = encodeState(MsgType.STATE, 1, 0, a.core.syncEpoch, new Uint8Array([1]));
    bus.step(a, { type: "delivered", now: bus.now, from: { nodeid: 3, pid: 103 }, bytes: st2 });
    bus.step(a, { type: "delivered", now: bus.now, from: { nodeid: 3, pid: 103 }, bytes: st2 });
    assertEquals(logs(a, /crit/)[0], "crit received duplicate state for member 3/103");
    // a NORMAL message from a non-member while syncing
    const n = encodeNormal(1, 1, 0, 1, new Uint8Array());
    bus.step(c, { type: "delivered", now: bus.now, from: { nodeid: 9, pid: 9 }, bytes: n });
    assertEquals(logs(c, /crit/)[0], "crit dfsm_node_info_lookup failed");
  }
});

Deno.test("protocol version: newer -> VERSION_ERROR forever; older -> ignored (C20, case 24)", () => {
  const { bus, nodes: [a, b] } = group(2);
  const newer = encodeNormal(1, 2, 0, 1, new Uint8Array());
  const older = encodeNormal(1, 0, 0, 1, new Uint8Array());
  bus.step(a, { type: "delivered", now: bus.now, from: b.id, bytes: older });
  assertEquals(logs(a).at(-1), "notice ignore message with wrong protocol version 0");
  assertEquals(a.core.mode, Mode.SYNCED);
  clearEffects(a);
  bus.step(a, { type: "delivered", now: bus.now, from: b.id, bytes: newer });
  assertEquals(logs(a), [
    "crit received message with protocol version 2",
    "crit message with protocol version 2 came from 2/102",
    "crit detected newer protocol - please update this node",
  ]);
  assertEquals(a.core.mode, Mode.VERSION_ERROR);
  bus.run(); // the own leave confchg -> service down, not restartable
  assert(a.effects.some((e) => e.type === "serviceDown" && !e.restartable));
  const eff = bus.step(a, { type: "initialised", now: bus.now, nodeid: 1, pid: 101 });
  assertEquals(eff, [
    { type: "log", domain: "dcdb", level: "crit", text: "can't initialize service" },
    { type: "serviceDown", restartable: false },
  ]);
  assertEquals(a.core.mode, Mode.VERSION_ERROR);
  // b continues alone
  assertEquals(b.core.mode, Mode.SYNCED);
});

Deno.test("mode-change rule: error modes only rise; a storage error gives ERROR (case 26)", () => {
  const { bus, nodes: [a, b] } = group(2);
  bus.send(b, "boom", 1, STORAGE_ERROR);
  bus.run();
  // the result of the write that hit it is the storage result
  assertEquals(b.completions.get(1), { processed: true, result: -5 });
  for (const n of [a, b]) {
    assertEquals(n.core.mode, Mode.ERROR);
    assertEquals(logs(n, /crit/), ["crit serious internal error - stop cluster connection"]);
  }
  // LEAVE (a failed state send) and VERSION_ERROR cannot replace ERROR
  const newer = encodeNormal(1, 2, 0, 1, new Uint8Array());
  bus.step(a, { type: "delivered", now: bus.now, from: b.id, bytes: newer });
  assertEquals(a.core.mode, Mode.ERROR);
  // in an error mode, everything delivered is dropped silently
  assertEquals(logs(a, /crit/).length, 1);
  // a fresh core: VERSION_ERROR then ERROR is allowed (>=)
  const g = group(2);
  g.bus.step(g.nodes[0], {
    type: "delivered",
    now: g.bus.now,
    from: g.nodes[1].id,
    bytes: newer,
  });
  assertEquals(g.nodes[0].core.mode, Mode.VERSION_ERROR);
  // setting the same mode again logs nothing: a second alone-confchg in SYNCED
  const s = new Bus();
  const x = s.add(1);
  s.join(x);
  s.run();
  s.crash(); // no-op
  s.run();
  assertEquals(logs(x, /all data/).length, 1);
});

Deno.test("verification: single node OK (case 9), delay, mismatch on a follower -> LEAVE (case 22)", () => {
  {
    const { bus, nodes: [a] } = group(1);
    bus.timer(a);
    bus.timer(a); // before the request came back: delayed
    assert(logs(a).includes("notice delay verify request 0000000000000002"));
    bus.run();
    const sent = mcasts(a).map(decode);
    assertEquals(sent.map((m) => m.type), [5, 6]);
    assertEquals(sent[0].payload.length, 8);
    assertEquals(sent[0].payload[0], 1); // csum_id 1
    assertEquals(sent[1].payload.length, 40);
    assertEquals(logs(a).at(-1), "notice data verification successful");
  }
  {
    const { bus, nodes: [a, b, c] } = group(3);
    b.app.salt = 1;
    bus.timer(b); // not the lowest: nothing
    assertEquals(mcasts(b).filter((m) => decode(m).type === 5).length, 0);
    bus.timer(a);
    bus.run();
    assertEquals(logs(a).filter((l) => l.includes("verification")), [
      "notice data verification successful",
    ]);
    assertEquals(logs(c).filter((l) => l.includes("verification")), [
      "notice data verification successful",
    ]);
    const wrong = logs(b, /wrong checksum/);
    assertEquals(wrong.length, 1);
    assert(/^crit wrong checksum [0-9A-F]{16} != [0-9A-F]{16} - restarting$/.test(wrong[0]));
    assertEquals(b.core.mode, Mode.LEAVE);
    // rejoin and resync
    b.app.salt = 0;
    bus.reinit(b);
    bus.run();
    for (const n of [a, b, c]) assertEquals(n.core.mode, Mode.SYNCED);
  }
  {
    // a confchg between request and verify: the epoch check drops the VERIFY
    const { bus, nodes: [a, b] } = group(2);
    bus.timer(a);
    bus.deliverOne(); // VERIFY_REQUEST: both compute, a sends VERIFY
    const c = bus.add(3);
    bus.queue.unshift({ kind: "join", node: c });
    bus.run();
    assert(!logs(b).some((l) => l.includes("verification")));
    // wrong length
    const bad = encodeState(MsgType.VERIFY_REQUEST, 1, 0, b.core.syncEpoch, new Uint8Array(4));
    bus.step(b, { type: "delivered", now: bus.now, from: a.id, bytes: bad });
    assertEquals(
      logs(b, /crit/)[0],
      "crit cpg received verify request with wrong length (4 bytes) form node 1/101",
    );
  }
});

Deno.test("a confchg in the middle of a round: old-epoch STATEs are dropped, the new round completes (case 20)", () => {
  const { bus, nodes: [a, b] } = group(2);
  const c = bus.add(3);
  bus.join(c);
  bus.deliverOne(); // confchg
  bus.deliverOne(); // SYNC_START: STATEs of epoch 3 now on the bus
  const d = bus.add(4);
  bus.queue.splice(1, 0, { kind: "join", node: d }); // after the first STATE
  bus.run();
  for (const n of [a, b, c, d]) assertEquals(n.core.mode, Mode.SYNCED, n.name);
  assert(logs(a, /debug ignore message \(msg_type == 2\) with wrong epoch/).length >= 1);
  assertEquals(logs(a, /received all states/).length, 2); // the first round of 2, the last one
});

Deno.test("SYNC_START from a member that is not the lowest is logged and processed (C6)", () => {
  const { bus, nodes: [a, b] } = group(2);
  const c = bus.add(3);
  bus.join(c);
  bus.deliverOne();
  const e = { counter: 77, time: 1, nodeid: 2, pid: 102 };
  bus.queue.unshift({ kind: "msg", from: b, bytes: encodeState(MsgType.SYNC_START, 1, 1, e) });
  bus.deliverOne();
  assert(logs(a).includes("crit ignore sync request from wrong member 2/102"));
  assert(logs(a).includes("notice received sync request (epoch 2/102/0000004D)"));
  bus.run(); // the lowest's SYNC_START restarts the round
  for (const n of [a, b, c]) assertEquals(n.core.mode, Mode.SYNCED, n.name);
});

Deno.test("kvstore-style round: every member synced after the last STATE, queue delivered, hooks (case 32)", () => {
  const bus = new Bus(KV, true);
  const a = bus.add(1, 10701);
  bus.join(a);
  bus.run();
  bus.send(a, "nodeip"); // queued: delivered after the confchg of b
  const b = bus.add(2, 10702);
  bus.queue.unshift({ kind: "join", node: b });
  bus.run();
  assertEquals(logs(a).slice(-3), [
    "notice received all states",
    "notice all data is up to date",
    "notice dfsm_deliver_queue: queue length 1",
  ]);
  assertEquals(types(mcasts(a)), [0, 1, 2]); // no UPDATE, no UPDATE_COMPLETE
  assertEquals(a.app.log, ["1:nodeip"]);
  assertEquals(b.app.log, ["1:nodeip"]);
  assertEquals(a.app.syncedHook, 2);
  // verification is off for this group
  bus.timer(a);
  assertEquals(types(mcasts(a)), [0, 1, 2]);
});

Deno.test("a departed sender's queued messages are removed at delivery", () => {
  const { bus, nodes: [a, b, c] } = group(3);
  bus.crash(c);
  bus.deliverOne(); // confchg {1,2}: START_SYNC
  bus.queue.unshift({ kind: "msg", from: b, bytes: encodeNormal(1, 1, 0, 50, new Uint8Array()) });
  bus.run();
  assertEquals(a.core.mode, Mode.SYNCED);
  void c;
  // a message queued from a member who then left
  const g = group(3);
  const [x, y, z] = g.nodes;
  const w = g.bus.add(4);
  g.bus.join(w);
  g.bus.deliverOne();
  g.bus.send(z, "from z");
  g.bus.deliverOne(); // SYNC_START
  g.bus.deliverOne(); // z's message: queued everywhere
  g.bus.queue = g.bus.queue.filter((it) => it.kind !== "msg");
  g.bus.crash(z);
  // the queue survives the confchg (no joiner), z is no longer a member
  g.bus.run();
  assert(logs(x).includes("notice remove message from non-member 3/103"));
  assertEquals(y.core.mode, Mode.SYNCED);
});

Deno.test("we left the process group -> LEAVE; a confchg without us in START is ignored", () => {
  const { bus, nodes: [a, b] } = group(2);
  bus.step(a, { type: "confchg", now: bus.now, members: [b.id], left: [a.id], joined: [] });
  assert(logs(a).includes("notice we (1/101) left the process group"));
  assertEquals(a.core.mode, Mode.LEAVE);
  const x = new Bus().add(5);
  const eff = x.core.step({ type: "confchg", now: 0, members: [b.id], left: [], joined: [b.id] });
  assertEquals(eff, []);
  assertEquals(x.core.mode, Mode.START);
});

Deno.test("C4: live messages of an unsynced sender: orders differ by default, agree with holdUnsyncedSenders", () => {
  const run = (hold: boolean) => {
    const bus = new Bus({ ...DCDB, holdUnsyncedSenders: hold });
    const [a, b] = group(2, bus).nodes;
    bus.send(a, "old");
    bus.run();
    const c = bus.add(3);
    bus.join(c);
    while (c.core.mode !== Mode.UPDATE) assert(bus.deliverOne());
    // a and b are SYNCED, c waits for the leader's updates (still on the bus)
    assertEquals([a.core.mode, b.core.mode], [Mode.SYNCED, Mode.SYNCED]);
    const n = bus.queue.length;
    bus.send(c, "from c", 42);
    assertEquals(c.core.waiting, [42]);
    bus.send(b, "from b");
    bus.queue.unshift(...bus.queue.splice(n));
    bus.run();
    // case 18: the sender in UPDATE gets the result of applying it after the commit
    assertEquals(c.completions.get(42), { processed: true, result: 3 });
    return [a, b, c].map((x) => x.app.log.slice(1));
  };
  assertEquals(run(false), [["3:from c", "2:from b"], ["3:from c", "2:from b"], [
    "2:from b",
    "3:from c",
  ]]);
  assertEquals(run(true), [["2:from b", "3:from c"], ["2:from b", "3:from c"], [
    "2:from b",
    "3:from c",
  ]]);
});

Deno.test("send-failure consequences of state messages, resends and UPDATE (4.13, C10); `sent` forgets", () => {
  {
    // resend: b's queued message is re-multicast on a join and that send fails
    const bus = new Bus();
    const a = bus.add(1);
    bus.join(a);
    bus.run();
    const b = bus.add(2);
    bus.join(b);
    bus.deliverOne();
    bus.send(b, "m", 1);
    const c = bus.add(3);
    bus.join(c);
    bus.deliverOne(); // SYNC_START
    bus.deliverOne(); // m: queued
    b.failSends = 1;
    bus.deliverOne(); // confchg with c: resend fails
    // a resend is a raw re-multicast: an exhausted TRY_AGAIN prints no "failed: 6" line
    assertEquals(logs(b, /crit/).slice(0, 2), [
      "crit dfsm_resend_queue failed",
      "crit leaving CPG group",
    ]);
  }
  {
    // STATE: LEAVE without a specific line; TRY_AGAIN exhaustion prints no "failed" line
    const { bus, nodes: [, b] } = group(2);
    const c = bus.add(3);
    bus.join(c);
    bus.deliverOne();
    b.failSends = 1;
    b.failError = 2;
    bus.deliverOne(); // SYNC_START -> STATE fails
    assertEquals(logs(b, /crit/), ["crit cpg_send_message failed: 2", "crit leaving CPG group"]);
  }
  {
    // UPDATE of the leader fails: LEAVE (recommended handling of C10)
    const { bus, nodes: [a] } = group(2);
    bus.send(a, "x");
    bus.run();
    const c = bus.add(3);
    bus.join(c);
    while (c.core.mode !== Mode.UPDATE) {
      if (bus.queue[0]?.kind === "msg" && decode(bus.queue[0].bytes).type === MsgType.STATE) {
        // the last STATE makes a send its UPDATE: fail it
        if (bus.queue.filter((i) => i.kind === "msg").length === 1) a.failSends = 1;
      }
      assert(bus.deliverOne());
    }
    assertEquals(logs(a, /crit/), [
      "crit failed to send UPDATE message",
      "crit leaving CPG group",
    ]);
  }
  {
    const { bus, nodes: [a] } = group(1);
    const eff = bus.send(a, "x", 1);
    const seq = (eff[0] as { seq: number }).seq;
    bus.step(a, { type: "sent", now: bus.now, seq });
    bus.step(a, { type: "sendFailed", now: bus.now, seq, error: 2 });
    assertEquals(logs(a, /crit/), ["crit cpg_send_message failed: 2"]);
    assertEquals(a.core.waiting, [1]); // not known as failed any more: still waiting
  }
});

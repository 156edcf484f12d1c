/**
 * Delivery of database-group messages (cluster spec 5.5-5.6): results and errnos, rejects, the
 * storage error flag, the corosync.conf hook, unlock requests judged by the lowest node only
 * (section 13 cases 8, 23, 25, 26, 27).
 */
import { assert, assertEquals } from "./assert.ts";
import { freshDb } from "./helpers.ts";
import { fakeCtx } from "./dcdb_fakes.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import {
  DcdbMsg,
  encodeFuseMessage,
  encodeUnlockMessage,
  type FuseOp,
} from "../../src/dcdb/codec.ts";
import { senderMessages } from "../../src/dcdb/apply.ts";
import { entryChecksum } from "../../src/memdb/checksum.ts";
import { Errno } from "../../src/util/errno.ts";

const T = 1795561411;
const enc = (s: string) => new TextEncoder().encode(s);
const N1 = { nodeid: 1, pid: 101 }, N2 = { nodeid: 2, pid: 202 }, N3 = { nodeid: 3, pid: 303 };

function setup(self = N1, opts: { quorate?: () => boolean } = {}) {
  const h = freshDb(T);
  const confs: boolean[] = [];
  const app = new DcdbApp(h.db, {
    quorate: opts.quorate ?? (() => true),
    self: () => self,
    corosyncConfChanged: (n) => confs.push(n),
  });
  app.onConfchg(fakeCtx(T), [N3, N1, N2]);
  return { h, app, confs, db: h.db };
}

function send(app: DcdbApp, from: typeof N1, op: FuseOp, time = T, now = time) {
  const { subtype, payload } = encodeFuseMessage(op);
  const ctx = fakeCtx(now);
  return { ...app.deliver(ctx, from, subtype, time, payload), ctx };
}

Deno.test("apply: writer = sender nodeid, mtime = header time; results are the storage results (13.8)", () => {
  const { h, app, db } = setup();
  using _ = h;
  assertEquals(send(app, N2, { type: "mkdir", path: "nodes" }).result, 0);
  assertEquals(send(app, N2, { type: "create", path: "a.cfg" }, T + 1).result, 0);
  const w = send(app, N3, {
    type: "write",
    path: "a.cfg",
    offset: 0,
    data: enc("hello\n"),
    truncate: true,
  }, T + 2);
  assertEquals([w.ret, w.result], ["ok", 6]);
  const e = db.memdb.lookup("a.cfg")!;
  assertEquals([e.writer, e.mtime, e.version], [3, T + 2, 4]);
  assertEquals([db.memdb.root.writer, db.memdb.root.mtime], [3, T + 2]);
  // Storage errors are results, not rejects: every member computes the same -errno.
  assertEquals(send(app, N1, { type: "create", path: "a.cfg" }).result, -Errno.EEXIST);
  assertEquals(send(app, N1, { type: "mkdir", path: "x/y" }).result, -Errno.ENOENT);
  assertEquals(send(app, N1, { type: "delete", path: "nope" }).result, -Errno.ENOENT);
  const big = send(app, N1, {
    type: "write",
    path: "a.cfg",
    offset: 1024 * 1024,
    data: enc("x"),
    truncate: false,
  });
  assertEquals([big.ret, big.result], ["ok", -Errno.EFBIG]);
  // Truncation: a WRITE with no data, offset = new length, flags 1.
  assertEquals(
    send(app, N1, {
      type: "write",
      path: "a.cfg",
      offset: 2,
      data: new Uint8Array(0),
      truncate: true,
    }).result,
    0,
  );
  assertEquals(db.memdb.read("a.cfg"), enc("he"));
});

Deno.test("apply: MTIME takes its time from the offset field, not the header", () => {
  const { h, app, db } = setup();
  using _ = h;
  send(app, N1, { type: "create", path: "f" });
  assertEquals(send(app, N2, { type: "mtime", path: "f", mtime: 1700000000 }, T + 5).result, 0);
  const e = db.memdb.lookup("f")!;
  assertEquals([e.mtime, e.writer, db.memdb.root.mtime], [1700000000, 2, 1700000000]);
});

Deno.test("reject: unknown subtype, no quorum, malformed payload -> no result (13.23, 13.25)", () => {
  let quorate = true;
  const { h, app, db } = setup(N1, { quorate: () => quorate });
  using _ = h;
  const ok = encodeFuseMessage({ type: "mkdir", path: "d" });
  let ctx = fakeCtx(T);
  assertEquals(app.deliver(ctx, N1, 9, T, ok.payload), { ret: "reject" });
  assertEquals(ctx.logs, ["crit: received unknown message type (msg_type == 9)"]);
  ctx = fakeCtx(T);
  assertEquals(app.deliver(ctx, N1, 0, T, ok.payload), { ret: "reject" });
  ctx = fakeCtx(T);
  assertEquals(app.deliver(ctx, N1, DcdbMsg.Mkdir, T, ok.payload.subarray(0, 21)), {
    ret: "reject",
  });
  assertEquals(ctx.logs, ["crit: received mailformed fuse message"]);
  ctx = fakeCtx(T);
  assertEquals(app.deliver(ctx, N1, DcdbMsg.Unlock, T, new Uint8Array(10)), { ret: "reject" });
  assertEquals(ctx.logs, ["crit: received short unlock message (10 < 33)"]);
  quorate = false;
  ctx = fakeCtx(T);
  assertEquals(app.deliver(ctx, N1, DcdbMsg.Mkdir, T, ok.payload), { ret: "reject" });
  assertEquals(ctx.logs, ["crit: received write while not quorate - trigger resync"]);
  assertEquals(db.memdb.lookup("d"), undefined);
  assertEquals(db.memdb.version, 1);
});

Deno.test("storage error flag after a delivery -> 'error' with the storage result (13.26)", () => {
  const { h, app, db } = setup();
  using _ = h;
  send(app, N1, { type: "create", path: "f" });
  const store = db.store as unknown as { commit: () => void };
  store.commit = () => {
    throw new Error("disk full");
  };
  const r = send(app, N2, { type: "write", path: "f", offset: 0, data: enc("x"), truncate: true });
  assertEquals([r.ret, r.result], ["error", -Errno.EIO]);
  assert(db.memdb.errors);
  // Every later message, of any type, also reports the error.
  const u = fakeCtx(T);
  const unlock = encodeUnlockMessage({ checksum: new Uint8Array(32), path: "priv/lock/x" });
  assertEquals(app.deliver(u, N1, DcdbMsg.UnlockRequest, T, unlock), { ret: "error", result: 0 });
});

Deno.test("corosync.conf hook: WRITE/CREATE of corosync.conf or RENAME onto it, notify only for own messages", () => {
  const { h, app, confs } = setup(N1);
  using _ = h;
  send(app, N2, { type: "create", path: "corosync.conf" });
  assertEquals(confs, [false]);
  send(app, N1, {
    type: "write",
    path: "corosync.conf",
    offset: 0,
    data: enc("a"),
    truncate: true,
  });
  assertEquals(confs, [false, true]);
  send(app, N1, { type: "create", path: "corosync.conf.new" });
  send(app, { nodeid: 1, pid: 999 }, {
    type: "rename",
    path: "corosync.conf.new",
    to: "corosync.conf",
  });
  assertEquals(confs, [false, true, false]); // another process on node 1 is not "own"
  // Failed operations, MTIME, DELETE and other paths never trigger it.
  send(app, N1, { type: "create", path: "corosync.conf" }); // EEXIST
  send(app, N1, { type: "mtime", path: "corosync.conf", mtime: 5 });
  send(app, N1, { type: "delete", path: "corosync.conf" });
  send(app, N1, { type: "create", path: "nodes/corosync.conf" });
  assertEquals(confs.length, 3);
});

function lockSetup(self: typeof N1) {
  const s = setup(self);
  send(s.app, N2, { type: "mkdir", path: "priv" });
  send(s.app, N2, { type: "mkdir", path: "priv/lock" });
  send(s.app, N2, { type: "mkdir", path: "priv/lock/x" }, T, T); // taken at t on node 2
  const e = s.db.memdb.lookup("priv/lock/x")!;
  const payload = encodeUnlockMessage({ checksum: entryChecksum(e), path: "priv/lock/x" });
  return { ...s, payload };
}

function request(
  app: DcdbApp,
  payload: Uint8Array,
  now: number,
  subtype: number = DcdbMsg.UnlockRequest,
) {
  const ctx = fakeCtx(now);
  const r = app.deliver(ctx, N3, subtype, now, payload);
  assertEquals(r, { ret: "ok", result: 0 });
  return ctx;
}

Deno.test("unlock request: only the lowest node sends UNLOCK, only once the lock expired (13.27)", () => {
  const { h, app, db, payload } = lockSetup(N1);
  using _ = h;
  assertEquals(request(app, payload, T + 60).normals, []);
  assertEquals(request(app, payload, T + 120).normals, []); // strictly more than 120 s
  const sent = request(app, payload, T + 121).normals;
  assertEquals(sent, [{ subtype: DcdbMsg.Unlock, payload }]);
  assert(db.memdb.lookup("priv/lock/x"), "a request deletes nothing by itself");
  // Every member deletes on UNLOCK, with the sender's nodeid as writer.
  const ctx = fakeCtx(T + 122);
  assertEquals(app.deliver(ctx, N1, DcdbMsg.Unlock, T + 121, sent[0].payload), {
    ret: "ok",
    result: 0,
  });
  assertEquals(db.memdb.lookup("priv/lock/x"), undefined);
  assertEquals([db.memdb.root.writer, db.memdb.root.mtime], [1, T + 121]);
});

Deno.test("unlock request: a member that is not the lowest never sends UNLOCK", () => {
  const { h, app, payload } = lockSetup(N2);
  using _ = h;
  assertEquals(request(app, payload, T + 500).normals, []);
});

Deno.test("unlock request: the caller's lowest-nodeid getter wins over onConfchg", () => {
  const h = freshDb(T);
  using _ = h;
  let lowest = 2;
  const app = new DcdbApp(h.db, {
    quorate: () => true,
    self: () => N2,
    lowestNodeid: () => lowest,
  });
  app.onConfchg(fakeCtx(T), [N1, N2]);
  assertEquals(app.lowestNodeid, 2);
  lowest = 1;
  assertEquals(app.lowestNodeid, 1);
});

Deno.test("unlock: nothing when the checksum, the type or the place does not match", () => {
  const { h, app, db, payload } = lockSetup(N1);
  using _ = h;
  const wrong = payload.slice();
  wrong[0] ^= 1;
  assertEquals(request(app, wrong, T + 500).normals, []);
  request(app, wrong, T + 500, DcdbMsg.Unlock);
  assert(db.memdb.lookup("priv/lock/x"));
  // A renewal (utime by the same writer) makes the old incarnation's UNLOCK a no-op.
  assertEquals(send(app, N2, { type: "mtime", path: "priv/lock/x", mtime: T + 10 }).result, 0);
  request(app, payload, T + 500, DcdbMsg.Unlock);
  assert(db.memdb.lookup("priv/lock/x"));
  // A file, and a directory outside priv/lock/, are never unlocked.
  send(app, N1, { type: "mkdir", path: "d" });
  const d = db.memdb.lookup("d")!;
  request(
    app,
    encodeUnlockMessage({ checksum: entryChecksum(d), path: "d" }),
    T + 500,
    DcdbMsg.Unlock,
  );
  assert(db.memdb.lookup("d"));
});

Deno.test("sender side: an unlock request is UNLOCK_REQUEST (no wait) then MTIME 0 (wait)", () => {
  const { h, db, payload } = lockSetup(N1);
  using _ = h;
  const msgs = senderMessages(db.memdb, { type: "unlockRequest", path: "priv/lock/x" });
  assertEquals(msgs.map((m) => [m.subtype, m.wait]), [[7, false], [6, true]]);
  assertEquals(msgs[0].payload, payload);
  assertEquals(
    msgs[1].payload,
    encodeFuseMessage({ type: "mtime", path: "priv/lock/x", mtime: 0 }).payload,
  );
  // Not a lock directory: only the MTIME 0.
  assertEquals(
    senderMessages(db.memdb, { type: "unlockRequest", path: "priv/lock/none" }).length,
    1,
  );
  assertEquals(senderMessages(db.memdb, { type: "mkdir", path: "m" }).map((m) => m.subtype), [2]);
});

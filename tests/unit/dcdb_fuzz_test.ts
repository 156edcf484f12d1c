/**
 * Fuzz of the database group: 20,000 (with `PMXCFS_SOAK=1`: 1,000,000) random and mutated
 * inputs
 *
 * - through the decoders (`src/dfsm/codec.ts`, `src/dcdb/codec.ts`): never an exception, and
 *   what decodes re-encodes to the same bytes;
 * - as whole CPG messages into a `Dfsm` core with a `DcdbApp` over a real `Database` (temp
 *   directory), in every mode: the capture's database-group lines mutated, generated NORMAL
 *   messages with valid and mutated FUSE / unlock payloads (so many of them really apply and
 *   persist), UPDATEs, STATEs and random bytes. The core never throws; malformed input is logged
 *   and dropped or leads to LEAVE / VERSION_ERROR as spec 3.5, 4.6 and 5.5 say, and the database
 *   on disk always loads back to the tree in RAM.
 *
 * Seed: `DCDB_FUZZ_SEED` (default 20261125).
 */
import { assert, assertEquals } from "./assert.ts";
import { freshDb } from "./helpers.ts";
import { HandBus } from "./dcdb_fakes.ts";
import { allCaptureLines } from "./dfsm_fixtures.ts";
import { prng } from "./prng.ts";
import { Dfsm } from "../../src/dfsm/dfsm.ts";
import {
  decodeMessage,
  encodeMessage,
  encodeNormal,
  encodeState,
  MsgType,
} from "../../src/dfsm/codec.ts";
import { DcdbApp } from "../../src/dcdb/dcdb_app.ts";
import {
  DcdbMsg,
  decodeFuseMessage,
  decodeState,
  decodeUnlockMessage,
  decodeUpdate,
  encodeFuseMessage,
  encodeUnlockMessage,
  encodeUpdate,
  type FuseOp,
} from "../../src/dcdb/codec.ts";
import { encodeIndex, entryChecksum } from "../../src/memdb/checksum.ts";
import { Database } from "../../src/store/database.ts";
import { Mode } from "../../src/dfsm/types.ts";
import type { DfsmEffect, MemberId } from "../../src/dfsm/types.ts";

const SEED = Number(Deno.env.get("DCDB_FUZZ_SEED") ?? 20261125);
/** `PMXCFS_SOAK=1` (`deno task soak`) runs the long version. */
const TOTAL = Deno.env.get("PMXCFS_SOAK") === "1" ? 1_000_000 : 20_000;
const T = 1795561423;
const DCDB = { groupName: "pve_dcdb_v1", protocolVersion: 1, domain: "dcdb", verifyPeriod: 3600 };
const enc = (s: string) => new TextEncoder().encode(s);

type Rnd = ReturnType<typeof prng>;

const CORPUS = allCaptureLines().filter((l) => l.group === "dcdb").map((l) => l.bytes);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One of the usual byte mutations: truncate, extend, flip bits, overwrite a u32. */
function mutate(rnd: Rnd, src: Uint8Array): Uint8Array {
  let b = src.slice();
  switch (rnd.int(5)) {
    case 0:
      return b.subarray(0, rnd.int(b.length + 1));
    case 1: {
      const x = new Uint8Array(b.length + 1 + rnd.int(64));
      x.set(b);
      for (let j = b.length; j < x.length; j++) x[j] = rnd.int(256);
      return x;
    }
    case 2:
      for (let k = 1 + rnd.int(4); k > 0 && b.length; k--) b[rnd.int(b.length)] ^= 1 << rnd.int(8);
      return b;
    case 3:
      if (b.length >= 4) {
        const at = rnd.int(b.length - 3) & ~3;
        const v = rnd.pick([0, 1, 0xffffffff, 0x7fffffff, b.length, rnd.int(64)]);
        new DataView(b.buffer).setUint32(at, v >>> 0, true);
      }
      return b;
    default:
      b = new Uint8Array(rnd.int(80)).map(() => rnd.int(256));
      return b;
  }
}

const NAMES = ["a", "b.cfg", "nodes", "priv", "lock", "x", "corosync.conf", "user.cfg"];

function randomPath(rnd: Rnd): string {
  const parts: string[] = [];
  for (let k = 1 + rnd.int(3); k > 0; k--) parts.push(rnd.pick(NAMES));
  if (rnd.int(4) === 0) return ["priv", "lock", ...parts.slice(0, 1)].join("/");
  return parts.join("/");
}

function randomOp(rnd: Rnd): FuseOp {
  const path = randomPath(rnd);
  switch (rnd.int(6)) {
    case 0:
      return { type: "mkdir", path };
    case 1:
      return { type: "create", path };
    case 2:
      return {
        type: "write",
        path,
        offset: rnd.pick([0, 0, 1, 100, 2000]),
        data: enc("x".repeat(rnd.int(300))),
        truncate: rnd.int(2) === 0,
      };
    case 3:
      return { type: "delete", path };
    case 4:
      return { type: "rename", path, to: randomPath(rnd) };
    default:
      return { type: "mtime", path, mtime: T + rnd.int(1000) };
  }
}

// ---- decoders --------------------------------------------------------------------------

Deno.test(`fuzz: ${TOTAL} random and mutated inputs through the decoders never throw; what decodes re-encodes (seed ${SEED})`, () => {
  const rnd = prng(SEED);
  const counts = { fuse: 0, unlock: 0, update: 0, state: 0, dfsm: 0 };
  const index = (() => {
    using h = freshDb(T);
    for (const p of ["nodes", "nodes/n1", "priv"]) {
      h.db.apply({ type: "mkdir", path: p }, { writer: 1, mtime: T });
    }
    return encodeIndex(h.db.memdb.index());
  })();
  for (let i = 0; i < TOTAL; i++) {
    const which = i % 5;
    try {
      if (which === 0) {
        const line = rnd.pick(CORPUS);
        const b = rnd.int(4) ? mutate(rnd, line) : line;
        const r = decodeMessage(b, rnd.int(2) ? 1 : undefined);
        if (r.ok) {
          counts.dfsm++;
          // a NORMAL count is a number: exact below 2^53 only (documented in the codec)
          const exact = r.msg.type !== 0 ||
            ("count" in r.msg && r.msg.count <= Number.MAX_SAFE_INTEGER);
          if (exact) assert(sameBytes(encodeMessage(r.msg), b), `iteration ${i}: dfsm re-encode`);
        }
      } else if (which === 1) {
        const op = randomOp(rnd);
        const m = encodeFuseMessage(op);
        const b = rnd.int(4) ? mutate(rnd, m.payload) : m.payload;
        const subtype = rnd.int(5) ? m.subtype : rnd.int(12);
        const r = decodeFuseMessage(subtype, b);
        if (r.ok) {
          counts.fuse++;
          const back = encodeFuseMessage(r.value);
          assertEquals(back.subtype, subtype, `iteration ${i}: fuse subtype`);
          assert(sameBytes(back.payload, b), `iteration ${i}: fuse re-encode`);
        }
      } else if (which === 2) {
        const csum = new Uint8Array(32).map(() => rnd.int(256));
        const m = encodeUnlockMessage({ checksum: csum, path: randomPath(rnd) });
        const b = rnd.int(4) ? mutate(rnd, m) : m;
        const r = decodeUnlockMessage(b);
        if (r.ok) {
          counts.unlock++;
          assert(sameBytes(encodeUnlockMessage(r.value), b), `iteration ${i}: unlock re-encode`);
        }
      } else if (which === 3) {
        const file = rnd.int(2) === 0;
        const m = encodeUpdate({
          inode: 1 + rnd.int(1000),
          parent: rnd.int(1000),
          version: rnd.int(5000),
          writer: rnd.int(4),
          mtime: T,
          type: file ? 8 : 4,
          name: rnd.pick(NAMES),
          data: file && rnd.int(2) ? enc("y".repeat(1 + rnd.int(100))) : null,
        });
        const b = rnd.int(4) ? mutate(rnd, m) : m;
        const r = decodeUpdate(b);
        if (r.ok) {
          counts.update++;
          if (r.value.inode !== 0) {
            assert(sameBytes(encodeUpdate(r.value), b), `iteration ${i}: update re-encode`);
          }
        }
      } else {
        const b = rnd.int(4) ? mutate(rnd, index) : index;
        const r = decodeState(b);
        if (r.ok) {
          counts.state++;
          assert(sameBytes(encodeIndex(r.value), b), `iteration ${i}: state re-encode`);
        }
      }
    } catch (e) {
      throw new Error(`iteration ${i} (decoder ${which}) threw: ${(e as Error).stack ?? e}`);
    }
  }
  // both outcomes were seen for every decoder
  for (const [k, v] of Object.entries(counts)) {
    assert(v > 0 && v < TOTAL / 5, `${k}: ${v} decoded`);
  }
});

// ---- the core with a DcdbApp over a real Database ----------------------------------------

interface Node {
  id: MemberId;
  db: Database;
  app: DcdbApp;
  core: Dfsm;
  quorate: boolean;
}

/** The bus of these tests: fresh cores over existing databases. */
class Bus extends HandBus<Node> {
  constructor() {
    super(T);
  }

  /** A fresh core (and app) over an existing database: a restarted daemon. */
  node(nodeid: number, db: Database): Node {
    const id = { nodeid, pid: 100 + nodeid };
    const n: Node = {
      id,
      db,
      quorate: true,
      app: undefined as unknown as DcdbApp,
      core: undefined as unknown as Dfsm,
    };
    n.app = new DcdbApp(db, { quorate: () => n.quorate, self: () => id });
    n.core = new Dfsm(DCDB, n.app);
    this.step(n, { type: "initialised", now: this.now, nodeid, pid: id.pid });
    return n;
  }
}

const BASE: FuseOp[] = [
  { type: "mkdir", path: "nodes" },
  { type: "mkdir", path: "priv" },
  { type: "mkdir", path: "priv/lock" },
  { type: "mkdir", path: "priv/lock/x" },
  { type: "create", path: "a" },
  { type: "create", path: "u" },
];

interface Setup {
  bus: Bus;
  target: Node;
}

/**
 * Fresh cores over the two databases of the run (fresh temp databases per setup would cost
 * most of the run's time): the target in the wanted mode.
 */
function setup(mode: Mode, dbs: [Database, Database], round: number): Setup {
  const bus = new Bus();
  const [da, db] = dbs;
  if (mode === Mode.START) {
    const t = bus.node(1, da);
    bus.step(t, {
      type: "confchg",
      now: bus.now,
      members: [{ nodeid: 2, pid: 102 }],
      left: [],
      joined: [{ nodeid: 2, pid: 102 }],
    });
    return { bus, target: t };
  }
  // one node's tree moves on (a daemon that ran alone for a while)
  (round % 2 ? da : db).apply(
    { type: "write", path: "u", offset: 0, data: enc(`round ${round}`), truncate: true },
    { writer: 1, mtime: T },
  );
  const a = bus.node(1, da);
  bus.join(a);
  bus.run();
  if (mode === Mode.SYNCED && round % 4 !== 0) return { bus, target: a }; // alone: cheaper
  const b = bus.node(2, db);
  bus.join(b);
  if (mode === Mode.SYNCED) {
    bus.run();
    return { bus, target: a };
  }
  if (mode === Mode.START_SYNC) {
    bus.deliverOne(); // confchg
    bus.deliverOne(); // SYNC_START
    bus.queue = [];
    return { bus, target: b };
  }
  while (a.core.mode !== Mode.UPDATE && b.core.mode !== Mode.UPDATE) {
    assert(bus.deliverOne(), "nobody reached UPDATE");
  }
  bus.queue = [];
  return { bus, target: a.core.mode === Mode.UPDATE ? a : b };
}

/** The tree on disk loads back to the tree in RAM (persist before anything else). */
function checkDisk(n: Node, what: string): void {
  if (n.db.memdb.errors) return; // the error flag admits a RAM-only change (storage spec 4.4)
  const path = n.db.store.path;
  const again = Database.open(path, T);
  try {
    assert(
      sameBytes(encodeIndex(again.memdb.index()), encodeIndex(n.db.memdb.index())),
      `${what}: config.db differs from the tree in RAM`,
    );
  } finally {
    again.close();
  }
}

/** Whether the database application must reject this NORMAL message (spec 5.5). */
function rejected(quorate: boolean, b: Uint8Array): boolean {
  const subtype = b[2] | (b[3] << 8);
  const payload = b.subarray(24);
  if (subtype < DcdbMsg.Write || subtype > DcdbMsg.Unlock || !quorate) return true;
  if (subtype >= DcdbMsg.UnlockRequest) return !decodeUnlockMessage(payload).ok;
  return !decodeFuseMessage(subtype, payload).ok;
}

const MODES: Mode[] = [Mode.START, Mode.START_SYNC, Mode.SYNCED, Mode.UPDATE];

function randomMessage(rnd: Rnd, t: Node): Uint8Array {
  const e = t.core.syncEpoch;
  const kind = rnd.int(20);
  if (kind === 0) return new Uint8Array(rnd.int(80)).map(() => rnd.int(256));
  if (kind <= 2) {
    let b: Uint8Array = rnd.pick(CORPUS).slice();
    if (b.length >= 8 && rnd.int(3) > 0) b[4] = 1;
    if (b.length >= 32 && rnd.int(2) === 0) {
      const dv = new DataView(b.buffer);
      dv.setUint32(16, e.counter, true);
      dv.setUint32(20, e.time, true);
      dv.setUint32(24, e.nodeid, true);
      dv.setUint32(28, e.pid, true);
    }
    if (rnd.int(2)) b = mutate(rnd, b);
    return b;
  }
  if (kind <= 14) {
    // a NORMAL message: a FUSE op or an unlock message, often valid
    let subtype: number;
    let payload: Uint8Array;
    if (rnd.int(8) === 0) {
      subtype = rnd.pick([DcdbMsg.UnlockRequest, DcdbMsg.Unlock]);
      const x = t.db.memdb.lookup("priv/lock/x");
      payload = encodeUnlockMessage({
        checksum: x && rnd.int(2) ? entryChecksum(x) : new Uint8Array(32),
        path: rnd.int(2) ? "priv/lock/x" : randomPath(rnd),
      });
    } else {
      const m = encodeFuseMessage(randomOp(rnd));
      subtype = rnd.int(20) ? m.subtype : rnd.int(12);
      payload = m.payload;
    }
    if (rnd.int(8) === 0) payload = mutate(rnd, payload);
    return encodeNormal(subtype, rnd.int(100) ? 1 : rnd.int(3), T, 1 + rnd.int(50), payload);
  }
  if (kind <= 17) {
    // UPDATE or UPDATE_COMPLETE in the current epoch (or a mutated one)
    const type = rnd.int(4) ? MsgType.UPDATE : MsgType.UPDATE_COMPLETE;
    const payload = type === MsgType.UPDATE
      ? encodeUpdate({
        inode: rnd.int(20),
        parent: rnd.int(3),
        version: rnd.int(40),
        writer: 1,
        mtime: T,
        type: rnd.int(2) ? 8 : 4,
        name: rnd.pick(NAMES),
        data: null,
      })
      : new Uint8Array();
    const b = encodeState(type, 1, T, e, payload);
    return rnd.int(3) ? b : mutate(rnd, b);
  }
  // a STATE with a real or mutated index
  const idx = encodeIndex(t.db.memdb.index());
  const b = encodeState(MsgType.STATE, 1, T, e, rnd.int(2) ? idx : mutate(rnd, idx));
  return rnd.int(4) ? b : mutate(rnd, b);
}

Deno.test(`fuzz: ${TOTAL} random and mutated messages into Dfsm + DcdbApp over a real database never throw (seed ${SEED})`, () => {
  const rnd = prng(SEED ^ 0x3c3c);
  const senders: MemberId[] = [
    { nodeid: 1, pid: 101 },
    { nodeid: 2, pid: 102 },
    { nodeid: 3, pid: 103 },
  ];
  const outcomes: Record<string, number> = {};
  let applied = 0;
  let s: Setup | undefined;
  let since = 0;
  let rounds = 0;
  let resets = 0;
  let rejects = 0;
  const freshPair = () => {
    const pair = [freshDb(T - 100), freshDb(T - 100)];
    BASE.forEach((op, i) => {
      for (const h of pair) h.db.apply(op, { writer: 1, mtime: T - 50 + i });
    });
    return pair;
  };
  let pair = freshPair();
  let dbs: [Database, Database] = [pair[0].db, pair[1].db];
  const used = (d: Database) => {
    const f = d.memdb.statfs();
    return (f.blocks - f.bfree) * f.bsize;
  };
  let setupVersion = 0;
  const finish = (what: string) => {
    if (!s) return;
    // reloading costs more than a setup: only when the messages changed the tree
    if (s.target.db.memdb.root.version !== setupVersion) checkDisk(s.target, what);
    for (const d of dbs) d.memdb.errors = false;
    s = undefined;
  };
  try {
    for (let i = 0; i < TOTAL; i++) {
      if (!s || i % (TOTAL / 8) === 0 || s.target.core.mode >= 128 || since >= 400) {
        finish(`before iteration ${i}`);
        // mutated offsets grow files up to 1 MiB and every setup hashes the trees: start
        // again from small databases now and then, or the run slows down as it goes
        if (dbs.some((d) => used(d) > 256 * 1024 || d.memdb.entryCount > 40)) {
          for (const h of pair) h[Symbol.dispose]();
          pair = freshPair();
          dbs = [pair[0].db, pair[1].db];
          resets++;
        }
        s = setup(MODES[(i / (TOTAL / 8)) % 4 | 0], dbs, rounds++);
        setupVersion = s.target.db.memdb.root.version;
        since = 0;
      }
      since++;
      const t = s.target;
      t.quorate = rnd.int(40) !== 0;
      const before = t.core.mode;
      const v0 = t.db.memdb.root.version;
      const b = randomMessage(rnd, t);
      const from = rnd.int(10) ? rnd.pick(senders.slice(0, 2)) : senders[2];
      let eff: DfsmEffect[];
      try {
        eff = t.core.step({ type: "delivered", now: s.bus.now, from, bytes: b });
      } catch (e) {
        throw new Error(`iteration ${i} (mode ${before}) threw: ${e}`);
      }
      if (t.db.memdb.root.version !== v0) applied++;
      const after = t.core.mode;
      const version = b.length >= 8 ? new DataView(b.buffer, b.byteOffset).getUint32(4, true) : -1;
      if (b.length < 16) assertEquals(after, Mode.LEAVE, `iteration ${i}: short message`);
      else if (version > 1) assertEquals(after, Mode.VERSION_ERROR, `iteration ${i}: newer`);
      else if (version < 1) assertEquals(after, before, `iteration ${i}: older is dropped`);
      else if (
        before === Mode.SYNCED && b.length >= 24 && b[0] === 0 && b[1] === 0 &&
        t.core.members.some((m) => m.nodeid === from.nodeid && m.pid === from.pid) &&
        rejected(t.quorate, b)
      ) {
        // spec 5.5: a malformed, unknown or unquorate NORMAL is rejected: the group leaves
        assertEquals(after, Mode.LEAVE, `iteration ${i}: rejected NORMAL`);
        rejects++;
      }
      if (after !== before && after >= 128) {
        assert(
          eff.some((e) => e.type === "log" && e.level === "crit"),
          `iteration ${i}: no crit line`,
        );
        assert(eff.some((e) => e.type === "leaveGroup"), `iteration ${i}: no leaveGroup`);
      }
      for (const e of eff) {
        if (e.type === "mcast") assert(e.bytes.length >= 24 && e.seq > 0);
        if (e.type === "complete") assert(e.outcome !== undefined);
        if (e.type === "log") assert(typeof e.text === "string" && e.domain === "dcdb");
      }
      if (rnd.int(50) === 0) checkDisk(t, `iteration ${i}`);
      const key = `${before}->${after}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    finish("at the end");
  } finally {
    for (const h of pair) h[Symbol.dispose]();
  }
  for (const m of MODES) {
    assert(outcomes[`${m}->${m}`] > 0, `mode ${m} kept: ${JSON.stringify(outcomes)}`);
    assert(outcomes[`${m}->253`] > 0, `mode ${m} left: ${JSON.stringify(outcomes)}`);
  }
  // a good share of the generated messages really changed the tree (and were persisted)
  assert(applied > TOTAL / 100, `only ${applied} applied`);
  assert(rejects > TOTAL / 1000, `only ${rejects} rejected NORMAL messages checked`);
  console.log(
    `${rounds} setups, ${resets} fresh databases, ${rejects} rejects, ${applied} messages changed the tree, outcomes ${
      JSON.stringify(outcomes)
    }`,
  );
});

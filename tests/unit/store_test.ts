/** config.db round trips and whole-state replacement (spec 4.4, 4.6). */
import { assert, assertEquals } from "./assert.ts";
import { encodeIndex, toHex } from "../../src/memdb/checksum.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { Errno } from "../../src/util/errno.ts";
import type { Database } from "../../src/store/database.ts";
import { enc, freshDb, T0 } from "./helpers.ts";
import { create, del, mkdir, mtime, rename, truncate, write } from "./ops.ts";

const kinds: [string, (db: Database) => { errno: number }][] = [
  ["mkdir", (db) => db.apply(mkdir("d2"), T0)],
  ["create", (db) => db.apply(create("d/new"), T0)],
  ["write", (db) => db.apply(write("d/f", enc("hello"), 3), T0)],
  ["write+truncate", (db) => db.apply(write("d/f", enc("xy"), 1, true), T0)],
  ["truncate", (db) => db.apply(truncate("d/f", 100), T0)],
  ["utime", (db) => db.apply(mtime("d/f", 7), { writer: 2, mtime: 0 })],
  ["rename", (db) => db.apply(rename("d/f", "d/g"), T0)],
  ["rename over", (db) => db.apply(rename("d/f", "d/other"), T0)],
  ["rename dir", (db) => db.apply(rename("d/empty", "moved"), T0)],
  ["delete file", (db) => db.apply(del("d/f"), T0)],
  ["delete dir", (db) => db.apply(del("d/empty"), T0)],
  ["lock mkdir", (db) => db.apply(mkdir("priv/lock/L"), T0)],
];

for (const [kind, op] of kinds) {
  Deno.test(`reload after ${kind} gives the same tree`, () => {
    using h = freshDb();
    const db = h.db;
    for (const d of ["d", "d/empty", "priv", "priv/lock"]) db.apply(mkdir(d), T0);
    db.apply(create("d/f"), T0);
    db.apply(write("d/f", enc("0123456789")), T0);
    db.apply(create("d/other"), T0);
    assertEquals(op(db).errno, 0);
    const sum = toHex(db.memdb.treeChecksum());
    const idx = encodeIndex(db.memdb.index());
    const again = h.reopen();
    assertEquals(toHex(again.memdb.treeChecksum()), sum);
    assertEquals(encodeIndex(again.memdb.index()), idx);
  });
}

/** A leader and a follower that diverged; the follower takes the leader's state. */
function diverged() {
  const leader = Memdb.fresh(0);
  const follower = freshDb();
  for (const t of [leader, follower.db]) {
    t.apply(mkdir("nodes"), T0);
    t.apply(create("a.cfg"), T0);
    t.apply(write("a.cfg", enc("same")), T0);
  }
  leader.apply(create("only-leader"), { writer: 1, mtime: 50 });
  leader.apply(write("a.cfg", enc("leader"), 0, true), { writer: 1, mtime: 51 });
  follower.db.apply(create("only-follower"), { writer: 2, mtime: 60 });
  follower.db.apply(mkdir("nodes/x"), { writer: 2, mtime: 61 });
  return { leader, follower };
}

Deno.test("4.6: whole-state replacement makes the follower equal to the leader", () => {
  const { leader, follower } = diverged();
  using _ = follower;
  const db = follower.db;
  const leaderIdx = encodeIndex(leader.index());
  const before = db.memdb.counters.get("storage.cfg");
  assertEquals(db.replaceState(leaderIdx, [...leader.rows()], 5000), null);
  assertEquals(toHex(db.memdb.treeChecksum()), toHex(leader.treeChecksum()));
  assertEquals(db.memdb.counters.get("storage.cfg"), before + 1);
  const row = db.store.sql.prepare("SELECT type FROM tree WHERE inode = 0").get() as {
    type: number;
  };
  assertEquals(row.type, 4);
  // And it is on disk: a reload gives the same tree.
  assertEquals(toHex(follower.reopen().memdb.treeChecksum()), toHex(leader.treeChecksum()));
  assertEquals(follower.db.apply(create("x"), T0).errno, 0);
});

Deno.test("4.6: a result that does not match the leader's index rolls back and sets the error flag", () => {
  const { leader, follower } = diverged();
  using _ = follower;
  const db = follower.db;
  const sum = toHex(db.memdb.treeChecksum());
  const leaderIdx = encodeIndex(leader.index());
  // Leave one received entry out: the stored tree cannot match the index.
  const rows = [...leader.rows()].filter((r) => r.name !== "only-leader");
  const err = db.replaceState(leaderIdx, rows, 5000);
  assert(err && /differs from leader/.test(err), String(err));
  assertEquals(db.memdb.errors, true);
  assertEquals(toHex(db.memdb.treeChecksum()), sum);
  assertEquals(db.apply(create("y"), T0).errno, Errno.EIO);
  assertEquals(toHex(follower.reopen().memdb.treeChecksum()), sum);
});

Deno.test("new databases use 512-byte pages; a database keeps the page size it has", () => {
  using h = freshDb();
  const size = (db: Database) =>
    (db.store.sql.prepare("PRAGMA page_size").get() as { page_size: number }).page_size;
  assertEquals(size(h.db), 512);
  h.db.store.sql.exec(
    "PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM; PRAGMA journal_mode=WAL",
  );
  h.db.apply(create("f"), T0);
  assertEquals(size(h.reopen()), 4096);
  assertEquals(h.db.memdb.lookup("f")?.type, 8);
});

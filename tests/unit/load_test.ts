/** Loading config.db: corrupt databases are refused (spec 4.5, 54-56, Q7-Q9). */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { Database } from "../../src/store/database.ts";
import { freshDb, T0, tempDir } from "./helpers.ts";
import { create, mkdir } from "./ops.ts";

/** A database with `nodes`, `nodes/a.cfg` and a version row, then `sql` applied raw. */
function corrupt(sql: string[]): () => void {
  return () => {
    using dir = tempDir();
    const path = `${dir.path}/config.db`;
    const db = Database.open(path, 1000);
    db.apply(mkdir("nodes"), T0);
    db.apply(create("nodes/a.cfg"), T0);
    db.apply(mkdir("empty"), T0);
    for (const s of sql) db.store.sql.exec(s);
    db.close();
    Database.open(path, 1000).close();
  };
}

const cases: [string, string[], RegExp][] = [
  [
    "a row with an empty name",
    ["UPDATE tree SET name = '' WHERE inode = 3"],
    /inode 3.*empty name/,
  ],
  [
    "a directory row with a non-empty blob",
    ["UPDATE tree SET data = x'00' WHERE inode = 2"],
    /inode 2.*directory with 1 bytes/,
  ],
  ["a row with type 7", ["UPDATE tree SET type = 7 WHERE inode = 3"], /inode 3.*unknown type 7/],
  [
    "an inode-0 row named other than __version__",
    ["UPDATE tree SET name = 'x' WHERE inode = 0"],
    /inode 0.*__version__/,
  ],
  [
    "two children with the same name",
    ["UPDATE tree SET name = 'a.cfg', type = 8, parent = 2 WHERE inode = 4"],
    /second entry of that name/,
  ],
  [
    "a row whose parent does not exist",
    ["UPDATE tree SET parent = 99 WHERE inode = 3"],
    /inode 3.*parent inode 99 does not exist/,
  ],
  [
    "a row whose parent is a regular file",
    ["UPDATE tree SET parent = 3 WHERE inode = 4"],
    /inode 4.*parent inode 3 is not a directory/,
  ],
  [
    "Q8: a row whose parent is a file with a higher inode",
    [
      "INSERT INTO tree VALUES (9, 0, 9, 0, 1, 8, 'late', NULL)",
      "UPDATE tree SET parent = 9, version = 9 WHERE inode = 4",
      "UPDATE tree SET version = 9 WHERE inode = 0",
    ],
    /inode 4.*parent inode 9 is not a directory/,
  ],
  [
    "Q7: no __version__ row while other rows exist",
    ["DELETE FROM tree WHERE inode = 0"],
    /no __version__ row/,
  ],
  [
    "Q9: a directory cycle",
    [
      "INSERT INTO tree VALUES (5, 6, 5, 0, 1, 4, 'c1', NULL)",
      "INSERT INTO tree VALUES (6, 5, 6, 0, 1, 4, 'c2', NULL)",
      "UPDATE tree SET version = 6 WHERE inode = 0",
    ],
    /not reachable from the root/,
  ],
  [
    "Q9: a self-parented directory",
    ["UPDATE tree SET parent = 4 WHERE inode = 4"],
    /inode 4.*not reachable/,
  ],
  [
    "a version row below the highest inode",
    ["UPDATE tree SET version = 2 WHERE inode = 0"],
    /below inode\/version 4/,
  ],
];

for (const [what, sql, msg] of cases) {
  Deno.test(`54: refuses to load ${what}`, () => {
    assertThrows(corrupt(sql), msg);
  });
}

Deno.test("54: a file that is not a database is refused with its path", () => {
  using dir = tempDir();
  const path = `${dir.path}/config.db`;
  Deno.writeTextFileSync(path, "this is not sqlite ".repeat(300));
  assertThrows(() => Database.open(path, 0), /config\.db/);
  assertEquals(Deno.readTextFileSync(path), "this is not sqlite ".repeat(300));
});

Deno.test("55-56: a type-4 version row and zero-length directory blobs load", () => {
  using h = freshDb();
  h.db.apply(mkdir("d"), T0);
  h.db.apply(create("d/f"), T0);
  h.db.store.sql.exec("UPDATE tree SET type = 4 WHERE inode = 0");
  h.db.store.sql.exec("UPDATE tree SET data = x'' WHERE inode = 2");
  const db = h.reopen();
  assertEquals(db.memdb.lookup("d")?.type, 4);
  assertEquals(db.memdb.readdir("d").map((e) => e.name), ["f"]);
  assertEquals(db.memdb.version, 3);
});

Deno.test("Q6: a fresh database keeps the stored version-row mtime in RAM", () => {
  using h = freshDb(4242);
  assertEquals(h.db.memdb.root.mtime, 4242);
  assertEquals(h.reopen(9999).memdb.root.mtime, 4242);
});

Deno.test("writer and mtime load modulo 2^32, type modulo 256", () => {
  using h = freshDb();
  h.db.apply(create("f"), T0);
  h.db.store.sql.exec(
    "UPDATE tree SET writer = 4294967297, mtime = 4294967298, type = 264 WHERE inode = 2",
  );
  const e = h.reopen().memdb.lookup("f")!;
  assertEquals([e.writer, e.mtime, e.type], [1, 2, 8]);
  assert(e.children === null);
});

/** Test case 64: create_pmxcfs_db. */
import { assertEquals } from "./assert.ts";
import { createPmxcfsDb } from "../../src/tools/create_pmxcfs_db.ts";
import { Database } from "../../src/store/database.ts";
import { tempDir } from "./helpers.ts";

Deno.test("64: create_pmxcfs_db imports regular files once, refuses repeats and big files", () => {
  using dir = tempDir();
  const src = `${dir.path}/src`;
  Deno.mkdirSync(`${src}/subdir`, { recursive: true });
  Deno.writeTextFileSync(`${src}/storage.cfg`, "dir: local\n");
  Deno.writeTextFileSync(`${src}/user.cfg`, "user:root@pam:1:0:::\n");
  const dbfile = `${dir.path}/config.db`;
  const quiet = console.error;
  console.error = () => {};
  try {
    assertEquals(createPmxcfsDb([src, dbfile], 1234), 0);
    const db = Database.open(dbfile, 0);
    const names = db.memdb.readdir("").map((e) => [e.name, e.writer, e.mtime]).sort();
    assertEquals(names, [["storage.cfg", 0, 1234], ["user.cfg", 0, 1234]]);
    assertEquals(
      new TextDecoder().decode(db.memdb.read("storage.cfg") as Uint8Array),
      "dir: local\n",
    );
    db.close();
    assertEquals(createPmxcfsDb([src, dbfile], 1235), 255);
    const big = `${dir.path}/big`;
    Deno.mkdirSync(big);
    Deno.writeFileSync(`${big}/huge.cfg`, new Uint8Array(1048577));
    assertEquals(createPmxcfsDb([big, `${dir.path}/other.db`]), 255);
    assertEquals(createPmxcfsDb([src]), 255);
    assertEquals(createPmxcfsDb([`${dir.path}/missing`, `${dir.path}/x.db`]), 255);
  } finally {
    console.error = quiet;
  }
});

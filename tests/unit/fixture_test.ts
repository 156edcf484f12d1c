/** The config.db written by the original C daemon loads unchanged (issue 2). */
import { assertEquals } from "./assert.ts";
import { Database } from "../../src/store/database.ts";
import { entryMode } from "../../src/fs/modes.ts";
import { C_MADE as FIXTURE, readManifest, sha256Hex, tempDir } from "./helpers.ts";
import type { Entry } from "../../src/memdb/entry.ts";

function walk(db: Database): [string, Entry][] {
  const out: [string, Entry][] = [];
  const rec = (prefix: string, dir: Entry) => {
    for (const e of dir.children!.values()) {
      const p = prefix ? `${prefix}/${e.name}` : e.name;
      out.push([p, e]);
      if (e.children) rec(p, e);
    }
  };
  rec("", db.memdb.root);
  return out;
}

Deno.test("c-made/config.db loads as manifest.json shows it, without being rewritten", async () => {
  using dir = tempDir();
  const path = `${dir.path}/config.db`;
  Deno.copyFileSync(`${FIXTURE}/config.db`, path);
  const before = await sha256Hex(Deno.readFileSync(path));
  const manifest = readManifest();

  const db = Database.open(path, 1_800_000_000);
  try {
    assertEquals(db.memdb.version, 306);
    const page = db.store.sql.prepare("PRAGMA page_size").get() as { page_size: number };
    assertEquals(page.page_size, 4096);
    const got = new Map(walk(db));
    assertEquals([...got.keys()].sort(), manifest.map((m) => m.path).sort());
    for (const m of manifest) {
      const e = got.get(m.path)!;
      assertEquals(e.type === 4 ? "dir" : "file", m.type, m.path);
      assertEquals(e.mtime, m.mtime, m.path);
      assertEquals(`0o${(entryMode(m.type, m.path, true) & 0o7777).toString(8)}`, m.mode, m.path);
      if (m.type === "file") {
        const data = db.memdb.read(m.path) as Uint8Array;
        assertEquals(data.length, m.size, m.path);
        assertEquals(await sha256Hex(data), m.sha256, m.path);
      }
    }
    // Inode numbers and versions are those the C daemon gave (see the README there).
    assertEquals(got.get("sdn/big.cfg")!.inode, 44);
    assertEquals(got.get("sdn/big.cfg")!.version, 299);
    assertEquals(got.get("nodes/vm/qemu-server/103.conf")!.inode, 33);
    assertEquals([...db.memdb.vmlist.vms.keys()].sort(), [100, 101, 102, 103]);
    assertEquals(db.memdb.vmlist.vms.get(102)?.node, "other");
    const sqlRows = db.store.sql.prepare("SELECT inode, version FROM tree ORDER BY inode").all();
    assertEquals(
      sqlRows.map((r) => [r.inode, r.version]),
      [...db.memdb.rows()].map((r) => [r.inode, r.version]).sort((a, b) => a[0] - b[0]),
    );
  } finally {
    db.close();
  }
  assertEquals(await sha256Hex(Deno.readFileSync(path)), before);
});

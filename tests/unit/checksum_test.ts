/** Spec 3.4 test vectors (verified against the C implementation) and index codec. */
import { assertEquals, assertThrows } from "./assert.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { decodeIndex, encodeIndex, entryChecksum, toHex } from "../../src/memdb/checksum.ts";
import { freshDb, sha256Hex } from "./helpers.ts";
import { create, mkdir, type Target, write } from "./ops.ts";

Deno.test("12: vector A, 100 files of 32 KiB zeros", async () => {
  using h = freshDb();
  const db = h.db;
  const s = { writer: 0, mtime: 1234 };
  for (let i = 0; i < 100; i++) {
    assertEquals(db.apply(create(`testfile${i}`), s).errno, 0);
    assertEquals(db.apply(write(`testfile${i}`, new Uint8Array(32768)), s).value, 32768);
  }
  const idx = db.memdb.index();
  assertEquals(
    [idx.version, idx.lastInode, idx.writer, idx.mtime, idx.entries.length],
    [201, 200, 0, 1234, 101],
  );
  const bytes = encodeIndex(idx);
  assertEquals(bytes.length, 4072);
  assertEquals(
    await sha256Hex(bytes),
    "913fd95015af9d93f10dd51ba2a7bb11351bcfe040be21e95fcba834adc3ec10",
  );
  const st = db.memdb.statfs();
  assertEquals(st.files - st.ffree, 101);
  // The same after a reload from disk.
  assertEquals(encodeIndex(h.reopen().memdb.index()), bytes);
});

function vectorB(m: Target) {
  m.apply(mkdir("nodes"), { writer: 1, mtime: 1700000000 });
  m.apply(create("nodes/a.cfg"), { writer: 2, mtime: 1700000001 });
  m.apply(write("nodes/a.cfg", new TextEncoder().encode("hello\n"), 0, true), {
    writer: 2,
    mtime: 1700000002,
  });
  m.apply(mkdir("priv"), { writer: 3, mtime: 1700000003 });
  m.apply(mkdir("priv/lock"), { writer: 3, mtime: 1700000003 });
  m.apply(mkdir("priv/lock/file-storage_cfg"), { writer: 3, mtime: 1700000004 });
}

Deno.test("13: vector B, tree checksum, lock checksum and index", async () => {
  const m = Memdb.fresh(0);
  vectorB(m);
  assertEquals(
    m.sortedEntries().map((e) => [e.inode, e.version]),
    [[0, 7], [2, 2], [3, 4], [5, 5], [6, 6], [7, 7]],
  );
  assertEquals(
    toHex(m.treeChecksum()),
    "c3bd0b0bad7b8069c1bcb475f69796bcf0381b3792087478a75561ca44e16ffb",
  );
  assertEquals(
    toHex(entryChecksum(m.lookup("priv/lock/file-storage_cfg")!)),
    "b9d849f6c23e4676ccb2ba5f1c167c92ce8c32c2c39a49215e747842d7309f0f",
  );
  const idx = m.index();
  const bytes = encodeIndex(idx);
  assertEquals(bytes.length, 272);
  assertEquals(
    await sha256Hex(bytes),
    "1436c78b956778deaa5e45990ecd9f846adfca9098131e61947f0b271d5e164e",
  );
  const short = idx.entries.map((e) => {
    const h = toHex(e.digest);
    return `${e.inode} ${h.slice(0, 8)}…${h.slice(-5)}`;
  });
  assertEquals(short, [
    "0 5ceb56c8…9795b",
    "2 7a8f1cd2…99c42",
    "3 e3b9c0a2…d86f0",
    "5 c7516303…25aa4",
    "6 4ab0891b…b7d48",
    "7 310c3b37…12e80",
  ]);
});

Deno.test("vector B is the same through the database and after a reload", () => {
  using h = freshDb();
  vectorB(h.db);
  const want = "c3bd0b0bad7b8069c1bcb475f69796bcf0381b3792087478a75561ca44e16ffb";
  assertEquals(toHex(h.db.memdb.treeChecksum()), want);
  assertEquals(toHex(h.reopen().memdb.treeChecksum()), want);
});

Deno.test("an index decodes to what was encoded and rejects a bad length", () => {
  const m = Memdb.fresh(0);
  vectorB(m);
  const bytes = encodeIndex(m.index());
  assertEquals(encodeIndex(decodeIndex(bytes)), bytes);
  const bad = bytes.slice();
  new DataView(bad.buffer).setUint32(28, 999, true);
  assertThrows(() => decodeIndex(bad), /size mismatch/);
  assertThrows(() => decodeIndex(bytes.subarray(0, 20)), /too short/);
});

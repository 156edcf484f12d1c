/** The storage test cases of spec section 15 (1-37, 39, 40) and section 13. */
import { assert, assertEquals } from "./assert.ts";
import { Errno } from "../../src/util/errno.ts";
import { dec, enc, freshDb, GUEST_DIRS, T0 } from "./helpers.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { create, del, mkdir, rename, truncate, unlockRequest, utime, write } from "./ops.ts";

Deno.test("1: a new database has mode 0600, version 1 and one __version__ row", () => {
  using h = freshDb(1234);
  assertEquals(Deno.statSync(h.path).mode! & 0o777, 0o600);
  assertEquals(h.db.memdb.version, 1);
  const all = h.db.store.sql.prepare("SELECT * FROM tree").all();
  assertEquals(all.length, 1);
  const r = all[0] as Record<string, unknown>;
  assertEquals(
    [r.inode, r.parent, r.version, r.writer, r.type, r.name, r.data],
    [0, 0, 1, 0, 8, "__version__", null],
  );
  const s = h.db.memdb.statfs();
  assertEquals(s.files - s.ffree, 1);
});

Deno.test("2: the journal mode is WAL", () => {
  using h = freshDb();
  const m = h.db.store.sql.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
  assertEquals(m.journal_mode, "wal");
});

Deno.test("3-6: directories", () => {
  using h = freshDb();
  const db = h.db;
  assertEquals(db.apply(mkdir("dir1/sdir1"), T0).errno, Errno.ENOENT);
  assertEquals(db.apply(del("dir1"), T0).errno, Errno.ENOENT);
  assertEquals(db.apply(mkdir("dir1"), T0).errno, 0);
  const d = db.memdb.lookup("dir1")!;
  assertEquals([d.inode, d.version], [2, 2]);
  assertEquals(db.apply(mkdir("dir1"), T0).errno, Errno.EEXIST);
  assertEquals(db.memdb.version, 2);
  assertEquals(db.apply(mkdir("dir1/sdir1"), T0).errno, 0);
  assertEquals(db.apply(mkdir("dir1/sdir1"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(del("dir1"), T0).errno, Errno.ENOTEMPTY);
  assertEquals(db.apply(del("dir1/sdir1"), T0).errno, 0);
  assertEquals(db.apply(del("dir1"), T0).errno, 0);
  // Absolute paths with a leading slash are accepted (section 13).
  assertEquals(db.apply(mkdir("/abs"), T0).errno, 0);
  assertEquals(db.apply(del("/abs"), T0).errno, 0);
});

Deno.test("7-11: files", () => {
  using h = freshDb();
  const db = h.db;
  assertEquals(db.apply(mkdir("dir1"), T0).errno, 0);
  assertEquals(db.memdb.read("dir1/f1"), Errno.ENOENT);
  assertEquals(db.apply(write("dir1/f1", enc("x"), 0, false), T0).errno, Errno.ENOENT);
  assertEquals(db.apply(create("dir1/f1"), T0).errno, 0);
  const zeros = new Uint8Array(1024);
  assertEquals(db.apply(write("dir1/f1", zeros, 0, false), T0).value, 1024);
  assertEquals(db.memdb.read("dir1/f1"), zeros);
  assertEquals(db.apply(write("dir1/f1", enc("0123456789"), 0, true), T0).value, 10);
  assertEquals((db.memdb.read("dir1/f1") as Uint8Array).length, 10);
  assertEquals(db.apply(write("dir1/f1", enc("X"), 3, false), T0).value, 1);
  assertEquals(db.apply(write("dir1/f1", enc("X"), 6, false), T0).value, 1);
  assertEquals(dec(db.memdb.read("dir1/f1")), "012X45X789");
  assertEquals(db.apply(del("dir1/f1"), T0).errno, 0);
  assertEquals(db.apply(del("dir1/f1"), T0).errno, Errno.ENOENT);
  assertEquals(db.apply(del("dir1"), T0).errno, 0);
});

Deno.test("14: files moved into a later directory reload (out-of-order parents)", () => {
  using h = freshDb();
  let db = h.db;
  db.apply(mkdir("dir1"), T0);
  db.apply(create("dir1/file1"), T0);
  db.apply(create("dir1/file2"), T0);
  db.apply(mkdir("dir2"), T0);
  assertEquals(db.apply(rename("dir1/file1", "dir2/file1"), T0).errno, 0);
  assertEquals(db.apply(rename("dir1/file2", "dir2/file2"), T0).errno, 0);
  db = h.reopen();
  assertEquals(db.apply(create("dir2/file1"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(create("dir2/file2"), T0).errno, Errno.EEXIST);
});

Deno.test("15: a moved subdirectory with moved files reloads", () => {
  using h = freshDb();
  let db = h.db;
  db.apply(mkdir("dir1"), T0);
  db.apply(mkdir("dir1/sd1"), T0);
  db.apply(create("dir1/file1"), T0);
  db.apply(create("dir1/file2"), T0);
  db.apply(mkdir("dir2"), T0);
  assertEquals(db.apply(rename("dir1/sd1", "dir2/sd1"), T0).errno, 0);
  assertEquals(db.apply(rename("dir1/file1", "dir2/sd1/file1"), T0).errno, 0);
  assertEquals(db.apply(rename("dir1/file2", "dir2/sd1/file2"), T0).errno, 0);
  db.apply(create("dir2/file3"), T0);
  db = h.reopen();
  assertEquals(db.apply(mkdir("dir2/sd1"), T0).errno, Errno.EEXIST);
  assertEquals(db.memdb.readdir("dir2/sd1").map((e) => e.name).sort(), ["file1", "file2"]);
});

Deno.test("16-17: the 1 MiB file size limit", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(create("f"), T0);
  assertEquals(db.apply(write("f", new Uint8Array(10), 1048566, false), T0).value, 10);
  assertEquals((db.memdb.read("f") as Uint8Array).length, 1048576);
  const v = db.memdb.version;
  assertEquals(db.apply(write("f", new Uint8Array(11), 1048566, false), T0).errno, Errno.EFBIG);
  assertEquals(db.memdb.version, v);
  assertEquals((db.memdb.read("f") as Uint8Array).length, 1048576);
  assertEquals(db.apply(truncate("f", 1048577), T0).errno, Errno.EFBIG);
  assertEquals(db.memdb.version, v);
});

Deno.test("18-20: truncate shrinks and zero-extends, also an empty file (Q1)", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(create("f"), T0);
  db.apply(write("f", enc("0123456789"), 0, false), T0);
  db.apply(truncate("f", 4), T0);
  assertEquals(dec(db.memdb.read("f")), "0123");
  db.apply(truncate("f", 8), T0);
  assertEquals(db.memdb.read("f"), new Uint8Array([48, 49, 50, 51, 0, 0, 0, 0]));
  db.apply(create("g"), T0);
  db.apply(write("g", enc("0123456789"), 0, false), T0);
  assertEquals(db.apply(write("g", enc("ab"), 20, false), T0).value, 2);
  const g = db.memdb.read("g") as Uint8Array;
  assertEquals(g.length, 22);
  assertEquals(g.subarray(10, 20), new Uint8Array(10));
  db.apply(create("e"), T0);
  assertEquals(db.apply(truncate("e", 10), T0).errno, 0);
  assertEquals(db.memdb.read("e"), new Uint8Array(10));
  assertEquals((h.reopen().memdb.read("e") as Uint8Array).length, 10);
});

Deno.test("21-22: create/mkdir collisions and files used as directories", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(create("x"), T0);
  db.apply(mkdir("d"), T0);
  assertEquals(db.apply(create("x"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(create("d"), T0).errno, Errno.ENOTDIR);
  assertEquals(db.apply(mkdir("x"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(mkdir("x/y"), T0).errno, Errno.ENOTDIR);
  assertEquals(db.apply(create("x/y"), T0).errno, Errno.ENOTDIR);
  assertEquals(db.memdb.read("x/y"), Errno.ENOENT);
  assertEquals(db.apply(write("d", enc("a"), 0, false), T0).errno, Errno.ENOTDIR);
});

Deno.test("23: bad names and the root", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("dir1"), T0);
  assertEquals(db.apply(mkdir("."), T0).errno, Errno.EACCES);
  assertEquals(db.apply(mkdir("dir1/.."), T0).errno, Errno.EACCES);
  assertEquals(db.apply(create("dir1/."), T0).errno, Errno.EACCES);
  assertEquals(utime(db, "..", T0).errno, Errno.EACCES);
  assertEquals(db.apply(del(""), T0).errno, Errno.EACCES);
  assertEquals(db.apply(rename("", "x"), T0).errno, Errno.EACCES);
  assertEquals(db.apply(rename("dir1", ""), T0).errno, Errno.EACCES);
});

Deno.test("24: each success bumps the version once, in the same transaction as the version row", () => {
  using h = freshDb();
  const db = h.db;
  const versionRow = () =>
    db.store.sql.prepare("SELECT version, writer, mtime FROM tree WHERE inode = 0").get() as {
      version: number;
      writer: number;
      mtime: number;
    };
  const ops: [() => { errno: number }, boolean][] = [
    [() => db.apply(mkdir("d"), { writer: 3, mtime: 2001 }), true],
    [() => db.apply(mkdir("d"), { writer: 3, mtime: 2002 }), false],
    [() => db.apply(create("d/f"), { writer: 4, mtime: 2003 }), true],
    [() => db.apply(write("d/f", enc("abc"), 0, false), { writer: 5, mtime: 2004 }), true],
    [() => db.apply(write("d/g", enc("abc"), 0, false), { writer: 5, mtime: 2005 }), false],
    [() => db.apply(truncate("d/f", 1), { writer: 6, mtime: 2006 }), true],
    [() => utime(db, "d/f", { writer: 7, mtime: 1500 }), true],
    [() => db.apply(rename("d/f", "d/h"), { writer: 8, mtime: 2008 }), true],
    [() => db.apply(rename("d/nope", "d/h"), { writer: 8, mtime: 2009 }), false],
    [() => db.apply(del("d/h"), { writer: 9, mtime: 2010 }), true],
    [() => db.apply(del("d/h"), { writer: 9, mtime: 2011 }), false],
  ];
  for (const [op, ok] of ops) {
    const before = db.memdb.version;
    const r = op();
    assertEquals(r.errno === 0, ok);
    assertEquals(db.memdb.version, before + (ok ? 1 : 0));
    const row = versionRow();
    assertEquals(row.version, db.memdb.version);
    assertEquals([row.writer, row.mtime], [db.memdb.root.writer, db.memdb.root.mtime]);
  }
  assertEquals({ ...versionRow() }, { version: 8, writer: 9, mtime: 2010 } as never);
});

Deno.test("25-26: rename keeps the inode, restamps it, and replaces a target row", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(create("a"), T0);
  db.apply(create("b"), T0);
  const a = db.memdb.lookup("a")!.inode;
  const b = db.memdb.lookup("b")!.inode;
  assertEquals(db.apply(rename("a", "c"), { writer: 0, mtime: 5555 }).errno, 0);
  const c = db.memdb.lookup("c")!;
  assertEquals([c.inode, c.version, c.mtime], [a, db.memdb.version, 5555]);
  const named = (n: string) =>
    db.store.sql.prepare("SELECT inode FROM tree WHERE name = ?").all(n) as { inode: number }[];
  assertEquals(named("a"), []);
  assertEquals(named("c").map((r) => r.inode), [a]);
  assertEquals(db.apply(rename("c", "b"), T0).errno, 0);
  assertEquals(named("b").map((r) => r.inode), [a]);
  assertEquals(db.store.sql.prepare("SELECT * FROM tree WHERE inode = ?").all(b), []);
  assertEquals(db.memdb.readdir("").map((e) => e.name), ["b"]);
});

Deno.test("27-28: only empty directories move; a failed move leaves the target (Q3)", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("A"), T0);
  db.apply(create("A/f"), T0);
  db.apply(mkdir("B"), T0);
  db.apply(mkdir("E"), T0);
  assertEquals(db.apply(rename("A", "C"), T0).errno, Errno.ENOTEMPTY);
  const v = db.memdb.version;
  assertEquals(db.apply(rename("A", "B"), T0).errno, Errno.ENOTEMPTY);
  assertEquals(db.memdb.version, v);
  assert(db.memdb.lookup("B"));
  assert(h.reopen().memdb.lookup("B"));
  assertEquals(h.db.apply(rename("E", "F"), T0).errno, 0);
});

Deno.test("rename edge cases the kernel filters get POSIX answers (Q3)", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("d"), T0);
  db.apply(mkdir("e"), T0);
  db.apply(create("f"), T0);
  const v = db.memdb.version;
  assertEquals(db.apply(rename("f", "f"), T0).errno, 0);
  assertEquals(db.memdb.version, v);
  assertEquals(db.apply(rename("f", "d"), T0).errno, Errno.EISDIR);
  assertEquals(db.apply(rename("d", "f"), T0).errno, Errno.ENOTDIR);
  assertEquals(db.apply(rename("d", "d/x"), T0).errno, Errno.EINVAL);
  assertEquals(db.apply(rename("f", "nope/f"), T0).errno, Errno.ENOENT);
  assertEquals(db.apply(rename("f", "f/g"), T0).errno, Errno.ENOTDIR);
  assertEquals(db.apply(rename("d", "e"), T0).errno, 0);
  assertEquals(db.memdb.version, v + 1);
});

function vmTree() {
  const h = freshDb();
  for (const d of GUEST_DIRS) assertEquals(h.db.apply(mkdir(d), T0).errno, 0);
  assertEquals(h.db.apply(create("nodes/n1/qemu-server/100.conf"), T0).errno, 0);
  return h;
}

Deno.test("29: a VMID is unique across nodes and guest types", () => {
  using h = vmTree();
  const db = h.db;
  assertEquals(db.apply(create("nodes/n2/qemu-server/100.conf"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(create("nodes/n2/lxc/100.conf"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(create("nodes/n1/lxc/100.conf"), T0).errno, Errno.EEXIST);
  assertEquals(db.apply(write("nodes/n1/qemu-server/100.conf", enc("x"), 0, true), T0).errno, 0);
  assertEquals([...db.memdb.vmlist.vms.keys()], [100]);
});

Deno.test("30-31: migration by rename, and no rename onto someone else's VMID", () => {
  using h = vmTree();
  const db = h.db;
  const v = db.memdb.vmlist.version;
  assertEquals(
    db.apply(rename("nodes/n1/qemu-server/100.conf", "nodes/n2/qemu-server/100.conf"), T0).errno,
    0,
  );
  assert(db.memdb.vmlist.version > v);
  assertEquals(db.memdb.vmlist.vms.get(100)?.node, "n2");
  assertEquals(db.memdb.vmlist.vms.get(100)?.type, "qemu");
  assertEquals(db.apply(create("nodes/n1/qemu-server/100.conf"), T0).errno, Errno.EEXIST);
  db.apply(create("nodes/n1/qemu-server/tmp"), T0);
  assertEquals(
    db.apply(rename("nodes/n1/qemu-server/tmp", "nodes/n1/qemu-server/100.conf"), T0).errno,
    Errno.EEXIST,
  );
  // Changing the guest type of the same VMID while migrating is allowed.
  assertEquals(
    db.apply(rename("nodes/n2/qemu-server/100.conf", "nodes/n1/lxc/100.conf"), T0).errno,
    0,
  );
  assertEquals(db.memdb.vmlist.vms.get(100), {
    node: "n1",
    type: "lxc",
    version: db.memdb.vmlist.vms.get(100)!.version,
  });
});

Deno.test("32: names that only look like VM configs are ordinary files", () => {
  using h = vmTree();
  const db = h.db;
  db.apply(mkdir("nodes/my_node"), T0);
  db.apply(mkdir("nodes/my_node/qemu-server"), T0);
  for (
    const p of [
      "nodes/n2/qemu-server/0100.conf",
      "nodes/n2/qemu-server/100.conf.bak",
      "nodes/n2/qemu-server/100.conf~",
      "nodes/n2/qemu-server/+1.conf",
      "nodes/my_node/qemu-server/100.conf",
    ]
  ) assertEquals(db.apply(create(p), T0).errno, 0, p);
  assertEquals([...db.memdb.vmlist.vms.keys()], [100]);
});

Deno.test("33: deleting a VM config drops the VMID and bumps the list version", () => {
  using h = vmTree();
  const db = h.db;
  const v = db.memdb.vmlist.version;
  assertEquals(db.apply(del("nodes/n1/qemu-server/100.conf"), T0).errno, 0);
  assertEquals(db.memdb.vmlist.vms.size, 0);
  assert(db.memdb.vmlist.version > v);
});

Deno.test("35: duplicate VMIDs in a database: starts, lowest inode wins (Q4)", () => {
  using h = vmTree();
  // Forge the duplicate the way a merged state would: straight into SQLite.
  const sql = h.db.store.sql;
  const lxc = h.db.memdb.lookup("nodes/n2/lxc")!.inode;
  const v = h.db.memdb.version + 1;
  sql.prepare("INSERT INTO tree VALUES (?, ?, ?, 0, 1000, 8, '100.conf', NULL)").run(v, lxc, v);
  sql.prepare("UPDATE tree SET version = ? WHERE inode = 0").run(v);
  // A file where a guest directory belongs is skipped, not fatal (Q4).
  const n2 = h.db.memdb.lookup("nodes/n2")!.inode;
  sql.prepare("INSERT INTO tree VALUES (?, ?, ?, 0, 1000, 8, 'openvz', NULL)").run(
    v + 1,
    n2,
    v + 1,
  );
  sql.prepare("UPDATE tree SET version = ? WHERE inode = 0").run(v + 1);
  const db = h.reopen();
  assertEquals(db.memdb.vmlist.vms.size, 1);
  assertEquals(db.memdb.vmlist.vms.get(100)?.node, "n1");
  assertEquals(db.memdb.warnings.length, 1);
  assert(db.memdb.warnings[0].includes("duplicate VMID 100"));
});

Deno.test("36-37: lock directories: mtime only forward, only by their writer; no rename", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("priv"), T0);
  db.apply(mkdir("priv/lock"), T0);
  assertEquals(db.apply(mkdir("priv/lock/L"), { writer: 5, mtime: 1005 }).errno, 0);
  assertEquals(utime(db, "priv/lock/L", { writer: 5, mtime: 1004 }).errno, Errno.EACCES);
  assertEquals(utime(db, "priv/lock/L", { writer: 6, mtime: 1006 }).errno, Errno.EACCES);
  assertEquals(utime(db, "priv/lock/L", { writer: 5, mtime: 1006 }).errno, 0);
  assertEquals(db.apply(rename("priv/lock/L", "priv/lock/M"), T0).errno, Errno.EACCES);
  // Files may move backwards in time; only locks are protected.
  db.apply(create("f"), { writer: 0, mtime: 2000 });
  assertEquals(utime(db, "f", { writer: 1, mtime: 10 }).errno, 0);
  assertEquals(db.memdb.lookup("f")!.mtime, 10);
});

Deno.test("38 (core part): an unlock request deletes a lock only after more than 120 s", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("priv"), T0);
  db.apply(mkdir("priv/lock"), T0);
  const t = 10_000;
  db.apply(mkdir("priv/lock/L"), { writer: 0, mtime: t });
  assertEquals(
    db.apply(unlockRequest("priv/lock/L"), { writer: 0, mtime: t, now: t }).errno,
    Errno.EACCES,
  );
  assert(db.memdb.lookup("priv/lock/L"));
  assertEquals(
    db.apply(unlockRequest("priv/lock/L"), { writer: 0, mtime: t + 120, now: t + 120 }).errno,
    Errno.EACCES,
  );
  assert(db.memdb.lookup("priv/lock/L"));
  assertEquals(
    db.apply(unlockRequest("priv/lock/L"), { writer: 0, mtime: t + 121, now: t + 121 }).errno,
    0,
  );
  assertEquals(db.memdb.lookup("priv/lock/L"), undefined);
});

Deno.test("39: renewal restarts the lock clock", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("priv"), T0);
  db.apply(mkdir("priv/lock"), T0);
  const t = 10_000;
  db.apply(mkdir("priv/lock/L"), { writer: 0, mtime: t, now: t });
  assertEquals(utime(db, "priv/lock/L", { writer: 0, mtime: t + 100, now: t + 100 }).errno, 0);
  assertEquals(
    db.apply(unlockRequest("priv/lock/L"), { writer: 0, mtime: t + 200, now: t + 200 }).errno,
    Errno.EACCES,
  );
  assert(db.memdb.lookup("priv/lock/L"));
  assertEquals(
    db.apply(unlockRequest("priv/lock/L"), { writer: 0, mtime: t + 221, now: t + 221 }).errno,
    0,
  );
  assertEquals(db.memdb.lookup("priv/lock/L"), undefined);
});

Deno.test("40: a different checksum is not expired and restarts the timer", () => {
  const m = Memdb.fresh(0);
  m.locks.touch("priv/lock/L", "aa", 100);
  assertEquals(m.locks.isExpired("priv/lock/L", "aa", 500), true);
  assertEquals(m.locks.isExpired("priv/lock/L", "bb", 500), false);
  assertEquals(m.locks.isExpired("priv/lock/L", "bb", 620), false);
  assertEquals(m.locks.isExpired("priv/lock/L", "bb", 621), true);
});

Deno.test("Q5: a reload keeps the first-seen time of an unchanged lock", () => {
  using h = freshDb(10_000);
  const db = h.db;
  db.apply(mkdir("priv"), T0);
  db.apply(mkdir("priv/lock"), T0);
  db.apply(mkdir("priv/lock/L"), { writer: 0, mtime: 10_000, now: 10_000 });
  const rows = [...db.memdb.rows()];
  db.memdb.replace(rows, 10_100);
  assertEquals(db.memdb.lockExpired("priv/lock/L", 10_121), true);
});

Deno.test("deleting a lock directory drops its record; a new one starts fresh", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(mkdir("priv"), T0);
  db.apply(mkdir("priv/lock"), T0);
  db.apply(mkdir("priv/lock/L"), { writer: 0, mtime: 100, now: 100 });
  assert(db.memdb.locks.has("priv/lock/L"));
  db.apply(del("priv/lock/L"), T0);
  assertEquals(db.memdb.locks.has("priv/lock/L"), false);
});

Deno.test("change counters: exact paths, rename counts both, reload bumps all, mkdir none", () => {
  using h = freshDb();
  const db = h.db;
  const c = db.memdb.counters;
  assertEquals(c.get("storage.cfg"), 1);
  db.apply(create("storage.cfg"), T0);
  db.apply(write("storage.cfg", enc("x"), 0, false), T0);
  assertEquals(c.get("storage.cfg"), 3);
  db.apply(mkdir("ha"), T0);
  assertEquals(c.get("ha/groups.cfg"), 1);
  db.apply(create("/user.cfg"), T0);
  assertEquals(c.get("user.cfg"), 2);
  db.apply(rename("storage.cfg", "user.cfg"), T0);
  assertEquals([c.get("storage.cfg"), c.get("user.cfg")], [4, 3]);
  utime(db, "user.cfg", T0);
  db.apply(del("user.cfg"), T0);
  assertEquals(c.get("user.cfg"), 5);
  assertEquals(h.reopen().memdb.counters.get("user.cfg"), 1);
});

Deno.test("statfs counts entries and rounds the byte sum up once", () => {
  using h = freshDb();
  const db = h.db;
  const s0 = db.memdb.statfs();
  db.apply(create("a"), T0);
  db.apply(write("a", new Uint8Array(5000), 0, false), T0);
  const s1 = db.memdb.statfs();
  assertEquals([s0.bfree - s1.bfree, s0.ffree - s1.ffree], [2, 1]);
  db.apply(create("b"), T0);
  db.apply(write("b", new Uint8Array(100), 0, false), T0);
  assertEquals(s0.bfree - db.memdb.statfs().bfree, 2);
  assertEquals([s1.bsize, s1.blocks, s1.files, s1.namemax], [4096, 32768, 262144, 256]);
});

Deno.test("beyond the original: the 128 MiB and 256k-inode limits give ENOSPC", () => {
  const m = Memdb.fresh(0);
  const big = new Uint8Array(1048576);
  for (let i = 0; i < 128; i++) {
    assertEquals(m.create(`f${i}`, T0).errno, 0);
    assertEquals(m.write(`f${i}`, T0, big, 0, false).errno, 0);
  }
  m.create("last", T0);
  const v = m.version;
  assertEquals(m.write("last", T0, big, 0, false).errno, Errno.ENOSPC);
  assertEquals(m.version, v);
  // Shrinking stays possible when full.
  assertEquals(m.truncate("f0", T0, 0).errno, 0);
  assertEquals(m.write("last", T0, big, 0, false).errno, 0);

  const n = Memdb.fresh(0);
  for (let i = 1; i < 262144; i++) n.mkdir(`d${i}`, T0);
  assertEquals(n.entryCount, 262144);
  assertEquals(n.mkdir("one-more", T0).errno, Errno.ENOSPC);
  assertEquals(n.create("one-more", T0).errno, Errno.ENOSPC);
  assertEquals(n.statfs().ffree, 0);
});

Deno.test("the sticky error flag refuses every mutation with EIO, reads keep working", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(create("f"), T0);
  db.memdb.errors = true;
  for (
    const r of [
      db.apply(mkdir("d"), T0),
      db.apply(create("g"), T0),
      db.apply(write("f", enc("x"), 0, false), T0),
      db.apply(truncate("f", 0), T0),
      utime(db, "f", T0),
      db.apply(rename("f", "g"), T0),
      db.apply(del("f"), T0),
    ]
  ) assertEquals(r.errno, Errno.EIO);
  assertEquals(db.memdb.read("f"), new Uint8Array(0));
});

Deno.test("a failed SQLite commit sets the error flag and reports EIO", () => {
  using h = freshDb();
  const db = h.db;
  db.apply(create("f"), T0);
  db.store.sql.exec(
    "CREATE TRIGGER boom BEFORE INSERT ON tree WHEN NEW.name = 'g' BEGIN SELECT RAISE(ABORT, 'boom'); END",
  );
  assertEquals(db.apply(create("g"), T0).errno, Errno.EIO);
  assertEquals(db.memdb.errors, true);
  assertEquals(db.apply(create("h"), T0).errno, Errno.EIO);
});

Deno.test("names are bytes: a non-UTF-8 name survives a reload", () => {
  using h = freshDb();
  const name = "caf\xe9-\xff";
  assertEquals(h.db.apply(create(name), T0).errno, 0);
  assertEquals(h.reopen().memdb.readdir("").map((e) => e.name), [name]);
  const raw = h.db.store.sql.prepare("SELECT hex(name) AS h FROM tree WHERE inode != 0").get() as {
    h: string;
  };
  assertEquals(raw.h, "636166E92DFF");
});

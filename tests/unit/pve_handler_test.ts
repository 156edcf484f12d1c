/**
 * The FUSE handler and the plugin layer through fake requests, over a real
 * database: the write rules (issue 6 points 1-7), the page-cache policy,
 * quorum, permissions and function files. No kernel, no root.
 */
import { assert, assertEquals } from "./assert.ts";
import { fakeMount, FakeReq, type Reply } from "./fuse_fakes.ts";
import { Errno } from "../../src/util/errno.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { encodeIndex } from "../../src/memdb/checksum.ts";
import { create, mkdir, write } from "./ops.ts";
import { dec, enc, T0 } from "./helpers.ts";

const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
const O_TRUNC = 0o1000, O_APPEND = 0o2000;
const ROOT = 1;

function setup(files: Record<string, string> = {}, dirs: string[] = []) {
  const m = fakeMount();
  for (const d of dirs) m.h.db.apply(mkdir(d), T0);
  for (const [p, c] of Object.entries(files)) {
    m.h.db.apply(create(p), T0);
    m.h.db.apply(write(p, enc(c)), T0);
  }
  const { handler, call } = m;
  const errno = (r: Reply) => (r.kind === "err" ? r.errno : 0);
  const t = {
    ...m,
    [Symbol.dispose]: () => m.h[Symbol.dispose](),
    /** The node id of `path`, by lookups from the root. */
    ino(path: string): number {
      let ino = ROOT;
      for (const name of path.split("/")) {
        const r = call((q) => handler.lookup(q, ino, name));
        if (r.kind !== "entry") throw new Error(`lookup ${path}: ${JSON.stringify(r)}`);
        ino = r.entry.ino;
      }
      return ino;
    },
    open(path: string, flags: number): number {
      const r = call((q) => handler.open(q, t.ino(path), flags));
      if (r.kind !== "open") throw new Error(`open ${path}: ${JSON.stringify(r)}`);
      return r.open.fh!;
    },
    /** Opens and returns the reply (which may not have come yet). */
    openLater(path: string, flags: number, q: FakeReq): void {
      handler.open(q, t.ino(path), flags);
    },
    write: (fh: number, data: string, off = 0) =>
      errno(call((q) => handler.write(q, 0, enc(data), off, fh))),
    writeBytes: (fh: number, data: Uint8Array, off = 0) =>
      errno(call((q) => handler.write(q, 0, data, off, fh))),
    flush: (fh: number) => errno(call((q) => handler.flush(q, 0, fh))),
    release: (fh: number) => errno(call((q) => handler.release(q, 0, fh))),
    read(fh: number, size = 1 << 20, off = 0): string {
      const r = call((q) => handler.read(q, 0, size, off, fh));
      if (r.kind !== "buf") throw new Error(`read: ${JSON.stringify(r)}`);
      return dec(r.data);
    },
    content: (path: string) => dec(m.h.db.memdb.lookup(path)?.data ?? new Uint8Array(0)),
    version: () => m.h.db.memdb.version,
  };
  return t;
}

Deno.test("open(O_TRUNC), write, close: one version, the whole content", () => {
  using t = setup({ "f.cfg": "old content" });
  const v = t.version();
  const fh = t.open("f.cfg", O_WRONLY | O_TRUNC);
  assertEquals(t.write(fh, "new"), 0);
  assertEquals(t.content("f.cfg"), "old content"); // nobody sees it before close
  assertEquals(t.flush(fh), 0);
  assertEquals(t.content("f.cfg"), "new");
  assertEquals(t.release(fh), 0);
  assertEquals(t.version(), v + 1);
});

Deno.test("point 5: `echo x > f` (flush of a dup before the write) is one version, never empty", () => {
  using t = setup({ "f.cfg": "old" });
  const v = t.version();
  const fh = t.open("f.cfg", O_WRONLY | O_TRUNC);
  assertEquals(t.flush(fh), 0); // bash: dup2 + close of the original descriptor
  assertEquals(t.content("f.cfg"), "old");
  assertEquals(t.write(fh, "x\n"), 0);
  assertEquals(t.flush(fh), 0);
  assertEquals(t.content("f.cfg"), "x\n");
  t.release(fh);
  assertEquals(t.version(), v + 1);
});

Deno.test("`: > f`: the truncation alone commits at release", () => {
  using t = setup({ "f.cfg": "old" });
  const fh = t.open("f.cfg", O_WRONLY | O_TRUNC);
  assertEquals(t.flush(fh), 0);
  assertEquals(t.flush(fh), 0);
  assertEquals(t.content("f.cfg"), "old");
  t.release(fh);
  assertEquals(t.content("f.cfg"), "");
});

Deno.test("point 1: appenders never lose a line, whatever the interleaving", () => {
  using t = setup({ "log": "" });
  const lines: string[] = [];
  for (let i = 0; i < 50; i++) {
    const a = t.open("log", O_WRONLY | O_APPEND);
    const b = t.open("log", O_WRONLY | O_APPEND);
    // The kernel's offset is stale for both: the handler appends regardless.
    assertEquals(t.write(a, `a${i}\n`, 0), 0);
    assertEquals(t.write(b, `b${i}\n`, 0), 0);
    if (i % 2) [a, b].forEach((fh) => (t.flush(fh), t.release(fh)));
    else [b, a].forEach((fh) => (t.flush(fh), t.release(fh)));
    lines.push(`a${i}`, `b${i}`);
  }
  const got = t.content("log").trim().split("\n");
  assertEquals(got.length, 100);
  assertEquals([...got].sort(), [...lines].sort());
});

for (const order of [[0, 1], [1, 0]]) {
  Deno.test(`point 1: ranges of two handles both survive (close order ${order})`, () => {
    using t = setup({ "f": "" });
    const h = [t.open("f", O_WRONLY), t.open("f", O_WRONLY)];
    t.write(h[0], "A".repeat(100), 0);
    t.write(h[1], "B".repeat(100), 100);
    for (const i of order) t.flush(h[i]);
    assertEquals(t.content("f"), "A".repeat(100) + "B".repeat(100));
  });
  Deno.test(`point 1: overlapping ranges, the later commit wins on the overlap only (${order})`, () => {
    using t = setup({ "f": "" });
    const h = [t.open("f", O_WRONLY), t.open("f", O_WRONLY)];
    t.write(h[0], "A".repeat(150), 0);
    t.write(h[1], "B".repeat(100), 100);
    for (const i of order) t.flush(h[i]);
    const overlap = order[1] === 0 ? "A".repeat(50) : "B".repeat(50);
    assertEquals(t.content("f"), "A".repeat(100) + overlap + "B".repeat(50));
  });
}

Deno.test("point 2: a failed write keeps the old file; the next close reports it, once", () => {
  using t = setup({ "f.cfg": "precious" });
  const fh = t.open("f.cfg", O_WRONLY | O_TRUNC);
  assertEquals(t.write(fh, "x".repeat(1000)), 0);
  assertEquals(t.writeBytes(fh, new Uint8Array(1 << 20), 1000), Errno.EFBIG);
  assertEquals(t.flush(fh), Errno.EFBIG);
  assertEquals(t.content("f.cfg"), "precious");
  assertEquals(t.flush(fh), 0);
  t.release(fh);
  assertEquals(t.content("f.cfg"), "precious");
});

Deno.test("point 2: a failed quiet-second commit is kept for the next close", () => {
  using t = setup({ "f.cfg": "precious" });
  const fh = t.open("f.cfg", O_WRONLY);
  assertEquals(t.write(fh, "new"), 0);
  t.state.quorate = false; // the commit is refused (EACCES)
  t.timers.fire();
  assertEquals(t.content("f.cfg"), "precious");
  t.state.quorate = true;
  assertEquals(t.flush(fh), Errno.EACCES);
  assertEquals(t.content("f.cfg"), "precious");
});

Deno.test("point 2: a write the store cannot persist (EIO) keeps the old file", () => {
  using t = setup({ "f.cfg": "precious" });
  t.h.db.store.sql.exec(
    "CREATE TRIGGER boom BEFORE UPDATE ON tree WHEN NEW.name = 'f.cfg' " +
      "BEGIN SELECT RAISE(ABORT, 'disk full'); END",
  );
  const v = t.version();
  const fh = t.open("f.cfg", O_WRONLY | O_TRUNC);
  t.write(fh, "new");
  assertEquals(t.flush(fh), Errno.EIO);
  assertEquals([t.content("f.cfg"), t.version()], ["precious", v]);
  assertEquals(t.h.reopen().memdb.lookup("f.cfg")!.data, enc("precious"));
});

Deno.test("a quiet writer's data is committed after the idle timer", () => {
  using t = setup({ "f.cfg": "old" });
  const fh = t.open("f.cfg", O_WRONLY | O_TRUNC);
  t.write(fh, "new");
  assertEquals(t.content("f.cfg"), "old");
  t.timers.fire();
  assertEquals(t.content("f.cfg"), "new");
  assertEquals(t.flush(fh), 0);
});

Deno.test("the quiet-second commit takes each writer one second after its last write", () => {
  using t = setup({ "a": "a0", "b": "b0" });
  const a = t.open("a", O_WRONLY | O_TRUNC);
  const b = t.open("b", O_WRONLY | O_TRUNC);
  t.write(a, "a1");
  t.timers.advance(600);
  t.write(b, "b1");
  t.timers.advance(500); // a is quiet for 1.1 s, b for 0.5 s
  assertEquals([t.content("a"), t.content("b")], ["a1", "b0"]);
  t.write(b, "b2", 2); // still writing: b waits longer
  t.timers.advance(900);
  assertEquals(t.content("b"), "b0");
  t.timers.advance(200);
  assertEquals(t.content("b"), "b1b2");
  assertEquals(t.timers.count, 0); // nothing left to do: no timer keeps the loop awake
});

Deno.test("without quorum a write fails with EACCES and close reports it", () => {
  using t = setup({ "f.cfg": "old" });
  const fh = t.open("f.cfg", O_WRONLY);
  t.state.quorate = false;
  assertEquals(t.write(fh, "x"), Errno.EACCES);
  assertEquals(t.flush(fh), Errno.EACCES);
  assertEquals(t.content("f.cfg"), "old");
  assertEquals(t.call((q) => t.handler.mkdir(q, ROOT, "d")).kind, "err");
});

Deno.test("point 7: a handle writes to its own inode after renames above it", () => {
  using t = setup({ "A/f": "one" }, ["A", "B"]);
  const held = t.open("A/f", O_WRONLY | O_TRUNC);
  const rename = (p: number, n: string, np: number, nn: string) =>
    t.call((q) => t.handler.rename(q, p, n, np, nn, 0));
  assertEquals(rename(t.ino("A"), "f", t.ino("B"), "g"), { kind: "err", errno: 0 });
  assertEquals(rename(ROOT, "A", ROOT, "C"), { kind: "err", errno: 0 });
  assertEquals(rename(t.ino("B"), "g", t.ino("C"), "f"), { kind: "err", errno: 0 });
  t.h.db.apply(mkdir("A"), T0);
  t.h.db.apply(create("A/f"), T0);
  t.h.db.apply(write("A/f", enc("victim")), T0);
  t.write(held, "new");
  assertEquals(t.flush(held), 0);
  assertEquals(t.content("C/f"), "new");
  assertEquals(t.content("A/f"), "victim");
  // A truncate and an utime by node id land on C/f too.
  const cf = t.ino("C/f");
  const attr = t.call((q) => t.handler.setattr(q, cf, { size: 1, atime: 5, mtime: 5 }, undefined));
  assertEquals(attr.kind, "attr");
  assertEquals([t.content("C/f"), t.h.db.memdb.lookup("C/f")!.mtime], ["n", 5]);
  assertEquals(t.content("A/f"), "victim");
});

Deno.test("a file removed while open takes the handle's data with it (POSIX)", () => {
  using t = setup({ "f": "x" });
  const fh = t.open("f", O_WRONLY);
  t.write(fh, "data");
  assertEquals(t.call((q) => t.handler.unlink(q, ROOT, "f")), { kind: "err", errno: 0 });
  assertEquals(t.flush(fh), 0);
  assertEquals(t.h.db.memdb.lookup("f"), undefined);
});

/** A leader tree made from the follower's rows, changed by `change`. */
function leaderOf(t: ReturnType<typeof setup>, change: (m: Memdb) => void) {
  const leader = Memdb.load([...t.h.db.memdb.rows()], 0);
  change(leader);
  return { index: encodeIndex(leader.index()), rows: [...leader.rows()] };
}

Deno.test("point 6: after a resync an open writer commits against the new tree", () => {
  using t = setup({ "f": "old", "g": "g" });
  const fh = t.open("f", O_WRONLY | O_TRUNC);
  t.write(fh, "mine");
  const l = leaderOf(t, (m) => m.apply(write("g", enc("leader")), { writer: 2, mtime: 9 }));
  assertEquals(t.h.db.replaceState(l.index, l.rows, 2000), null);
  assertEquals(t.flush(fh), 0);
  assertEquals(t.content("f"), "mine");
  assertEquals(t.content("g"), "leader");
});

Deno.test("point 6: a writer whose file vanished in a resync gets EIO at close", () => {
  using t = setup({ "f": "old" });
  const fh = t.open("f", O_WRONLY | O_TRUNC);
  t.write(fh, "mine");
  const l = leaderOf(t, (m) => m.apply({ type: "delete", path: "f" }, { writer: 2, mtime: 9 }));
  assertEquals(t.h.db.replaceState(l.index, l.rows, 2000), null);
  assertEquals(t.flush(fh), Errno.EIO);
  assertEquals(t.h.db.memdb.lookup("f"), undefined);
});

Deno.test("every change a resync applies invalidates the kernel's view of it", () => {
  using t = setup({ "f": "old" });
  const ino = t.ino("f");
  const l = leaderOf(t, (m) => m.apply(write("f", enc("new"), 0, true), { writer: 2, mtime: 9 }));
  t.invalidated.length = 0;
  t.h.db.replaceState(l.index, l.rows, 2000);
  assert(t.invalidated.includes(ino), `invalidated ${t.invalidated}`);
});

/** Lets settled invalidations finish (they end in promise callbacks). */
const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("point 3: readers get the page cache only while nobody writes", async () => {
  using t = setup({ "f": "v1" });
  const ino = t.ino("f");
  await settle();
  const r1 = t.call((q) => t.handler.open(q, ino, O_RDONLY));
  assert(r1.kind === "open" && r1.open.keepCache && !r1.open.directIo, JSON.stringify(r1));
  // A writer waits until the cached reader closed (the kernel's size must not move under it).
  const wq = new FakeReq();
  t.handler.open(wq, ino, O_WRONLY | O_TRUNC);
  assertEquals(wq.reply, undefined);
  const r2 = t.call((q) => t.handler.open(q, ino, O_RDONLY));
  assert(r2.kind === "open" && r2.open.directIo, "a reader next to a waiting writer reads direct");
  t.release(r1.kind === "open" ? r1.open.fh! : 0);
  assert(wq.reply?.kind === "open" && wq.reply.open.directIo, "the writer got in");
  const w = wq.reply.open.fh!;
  const rfh = r2.kind === "open" ? r2.open.fh! : 0;
  t.write(w, "v2 longer");
  t.flush(w);
  assertEquals(t.read(rfh), "v1"); // its snapshot: one whole version
  t.release(rfh);
  t.release(w);
  await settle();
  const r3 = t.call((q) => t.handler.open(q, ino, O_RDONLY));
  assert(r3.kind === "open" && r3.open.keepCache, "back to the page cache");
  assertEquals(t.read(r3.kind === "open" ? r3.open.fh! : 0), "v2 longer");
});

Deno.test("a writer waits for a cached reader at most the wait time", async () => {
  using t = setup({ "f": "v1" });
  const ino = t.ino("f");
  await settle();
  t.call((q) => t.handler.open(q, ino, O_RDONLY)); // never closed
  const wq = new FakeReq();
  t.handler.open(wq, ino, O_RDWR);
  assertEquals(wq.reply, undefined);
  t.timers.fire();
  assertEquals(wq.reply?.kind, "open");
});

Deno.test("point 4: attributes are not cached while a writer is open; its handle sees its size", () => {
  using t = setup({ "f": "12345" });
  const ino = t.ino("f");
  const fh = t.open("f", O_RDWR);
  t.write(fh, "123456789");
  const byPath = t.call((q) => t.handler.getattr(q, ino, undefined));
  assert(byPath.kind === "attr", JSON.stringify(byPath));
  assertEquals([byPath.attr.size, byPath.timeout], [5, 0]);
  const byHandle = t.call((q) => t.handler.getattr(q, ino, fh));
  assert(byHandle.kind === "attr");
  assertEquals(byHandle.attr.size, 9);
  assertEquals(t.read(fh), "123456789"); // the writer reads its own data
  t.flush(fh);
  t.release(fh);
  const after = t.call((q) => t.handler.getattr(q, ino, undefined));
  assert(after.kind === "attr");
  assertEquals([after.attr.size, after.timeout], [9, 1]);
});

Deno.test("create: the name exists at once, the content arrives at close", () => {
  using t = setup();
  const r = t.call((q) => t.handler.create(q, ROOT, "new.cfg", 0o640, O_WRONLY));
  assert(r.kind === "create", JSON.stringify(r));
  assertEquals(t.content("new.cfg"), "");
  t.write(r.open.fh!, "hello");
  assertEquals(t.flush(r.open.fh!), 0);
  assertEquals(t.content("new.cfg"), "hello");
});

Deno.test("function files: .debug switches debug logging, .version is readable", () => {
  using t = setup();
  const fh = t.open(".debug", O_WRONLY);
  assertEquals(t.write(fh, "1\n"), 0);
  assertEquals(t.state.debug, true);
  const v = t.open(".version", O_RDONLY);
  assert(t.read(v).startsWith("{"), "json");
  assertEquals(t.write(v, "x"), Errno.EIO);
});

Deno.test("chmod is accepted only for the shown mode; chown only towards root:www-data", () => {
  using t = setup({ "f": "x" });
  const ino = t.ino("f");
  const setattr = (set: Record<string, number>) =>
    t.call((q) => t.handler.setattr(q, ino, set, undefined)).kind;
  assertEquals(setattr({ mode: 0o100640 }), "attr");
  assertEquals(setattr({ mode: 0o100600 }), "err");
  assertEquals(setattr({ uid: 0, gid: 33 }), "attr");
  assertEquals(setattr({ gid: 0 }), "err");
});

Deno.test("names: synthetic entries refuse changes; lookups below a file fail", () => {
  using t = setup({ "f": "x" });
  assertEquals(t.call((q) => t.handler.mkdir(q, ROOT, "local")), {
    kind: "err",
    errno: Errno.EACCES,
  });
  assertEquals(t.call((q) => t.handler.lookup(q, t.ino("f"), "x")), {
    kind: "err",
    errno: Errno.ENOTDIR,
  });
});

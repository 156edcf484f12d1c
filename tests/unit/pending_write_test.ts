/**
 * A handle's pending change: the ops it commits, and (property) applying those
 * ops to the file gives exactly what the handle saw.
 */
import { assertEquals } from "./assert.ts";
import { PendingWrite } from "../../src/fs/pending_write.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { prng } from "./prng.ts";
import { create, write } from "./ops.ts";
import { dec, enc, T0 } from "./helpers.ts";

Deno.test("open(O_TRUNC) and writes from 0 commit as ONE whole-file write", () => {
  const p = PendingWrite.truncatedAtOpen();
  assertEquals(p.onlyOpenTruncation, true);
  p.write(0, enc("hello "));
  p.write(6, enc("world"));
  assertEquals(p.onlyOpenTruncation, false);
  const ops = p.ops("f", 100);
  assertEquals(ops.length, 1);
  assertEquals(ops[0].type === "write" && [ops[0].offset, ops[0].truncate], [0, true]);
  assertEquals(ops[0].type === "write" && dec(ops[0].data), "hello world");
});

Deno.test("open(O_TRUNC) alone commits a truncation to 0", () => {
  const ops = PendingWrite.truncatedAtOpen().ops("f", 10);
  assertEquals(ops.map((o) => o.type === "write" && [o.offset, o.data.length, o.truncate]), [
    [0, 0, true],
  ]);
});

Deno.test("disjoint ranges commit only what was written; a later write wins on the overlap", () => {
  const p = new PendingWrite();
  p.write(100, enc("BB"));
  p.write(0, enc("AAAA"));
  p.write(2, enc("xx")); // overlaps the first range
  const ops = p.ops("f", 1000);
  assertEquals(ops.map((o) => o.type === "write" && [o.offset, dec(o.data), o.truncate]), [
    [0, "AAxx", false],
    [100, "BB", false],
  ]);
});

Deno.test("appends go at the end of the file as it is at commit", () => {
  const p = new PendingWrite();
  p.append(enc("a\n"));
  p.append(enc("b\n"));
  assertEquals(dec(p.view(enc("x\n"))), "x\na\nb\n");
  const ops = p.ops("f", 7);
  assertEquals(ops.map((o) => o.type === "write" && [o.offset, dec(o.data)]), [[7, "a\nb\n"]]);
});

/** A byte-array model of what a handle sees: the file at open, then its own changes. */
function applyModel(base: Uint8Array, steps: Step[]): Uint8Array {
  let v = base.slice();
  const resize = (n: number) => {
    const out = new Uint8Array(n);
    out.set(v.subarray(0, Math.min(n, v.length)));
    v = out;
  };
  for (const s of steps) {
    if (s.kind === "truncate") resize(s.length);
    else {
      const off = s.kind === "append" ? v.length : s.offset;
      if (off + s.data.length > v.length) resize(off + s.data.length);
      v.set(s.data, off);
    }
  }
  return v;
}

type Step =
  | { kind: "write"; offset: number; data: Uint8Array }
  | { kind: "append"; data: Uint8Array }
  | { kind: "truncate"; length: number };

/** One random handle life; throws naming the seed when the committed file differs. */
function checkSeed(seed: number): void {
  const r = prng(seed);
  const base = new Uint8Array(r.int(300)).map(() => 65 + r.int(26));
  const appendOnly = r.int(4) === 0;
  const trunc = r.int(3) === 0;
  const p = trunc ? PendingWrite.truncatedAtOpen() : new PendingWrite();
  const steps: Step[] = trunc ? [{ kind: "truncate", length: 0 }] : [];
  for (let i = r.int(8); i >= 0; i--) {
    const data = new Uint8Array(1 + r.int(120)).map(() => 97 + r.int(26));
    const roll = r.int(10);
    if (appendOnly) {
      p.append(data);
      steps.push({ kind: "append", data });
    } else if (roll === 0) {
      const length = r.int(400);
      p.truncate(length, base);
      steps.push({ kind: "truncate", length });
    } else {
      const offset = r.int(500);
      p.write(offset, data);
      steps.push({ kind: "write", offset, data });
    }
  }
  const want = applyModel(base, steps);
  const at = `seed ${seed}`;
  assertEquals(Array.from(p.view(base)), Array.from(want), `view, ${at}`);
  assertEquals(p.size(base.length), want.length, `size, ${at}`);
  const m = Memdb.fresh(0);
  m.apply(create("f"), T0);
  m.apply(write("f", base), T0);
  const before = m.version;
  assertEquals(m.applyAll(p.ops("f", base.length), T0).errno, 0, at);
  assertEquals(Array.from(m.lookup("f")!.data ?? []), Array.from(want), `committed, ${at}`);
  assertEquals(m.version, before + 1, `one version per commit, ${at}`);
}

Deno.test("property: for 3000 random handles the committed file is what the handle saw", () => {
  for (let seed = 1; seed <= 3000; seed++) checkSeed(seed);
});

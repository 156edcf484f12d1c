/**
 * Property (issue 6 point 7): after any sequence of renames of files and
 * directories, the path found for every inode leads back to that inode, so a
 * by-inode operation (a handle's commit, a truncate, an utime) acts on it and
 * on nothing else.
 */
import { assertEquals } from "./assert.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { prng } from "./prng.ts";
import { create, del, mkdir, rename } from "./ops.ts";

const NAMES = ["A", "B", "C", "f", "g"];

function checkSeed(seed: number): number {
  const r = prng(seed);
  const m = Memdb.fresh(0);
  let renamed = 0;
  for (let step = 0; step < 300; step++) {
    const path = () => Array.from({ length: 1 + r.int(3) }, () => r.pick(NAMES)).join("/");
    const s = { writer: 0, mtime: step };
    const roll = r.int(10);
    const res = roll < 2
      ? m.apply(mkdir(path()), s)
      : roll < 4
      ? m.apply(create(path()), s)
      : roll < 5
      ? m.apply(del(path()), s)
      : m.apply(rename(path(), path()), s);
    if (roll >= 5 && res.errno === 0) renamed++;
    for (const e of m.sortedEntries()) {
      const p = m.pathOf(e.inode);
      assertEquals(p !== undefined && m.lookup(p) === e, true, `seed ${seed} step ${step}: ${p}`);
    }
  }
  return renamed;
}

Deno.test("property: every inode's path resolves back to it after random renames (500 seeds)", () => {
  let renamed = 0;
  for (let seed = 1; seed <= 500; seed++) renamed += checkSeed(seed);
  // The sequences must really move things around.
  if (renamed < 3000) throw new Error(`only ${renamed} successful renames`);
});

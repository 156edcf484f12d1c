/**
 * Property: a seeded random sequence of 10 000 operations applied to the
 * persistent tree, then the database closed and reloaded, gives the same tree
 * checksum; and the pure memdb core gives the same results op by op.
 */
import { assertEquals } from "./assert.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { toHex } from "../../src/memdb/checksum.ts";
import { freshDb } from "./helpers.ts";
import { randomOps } from "./random_ops.ts";

const OPS = 10_000;

for (let seed = 1; seed <= 20; seed++) {
  Deno.test(`random ops, seed ${seed}: reload gives the same tree checksum`, () => {
    using h = freshDb(1_700_000_000);
    const model = Memdb.fresh(1_700_000_000);
    const { ops, labels } = randomOps(seed, OPS);
    let ok = 0;
    for (let i = 0; i < ops.length; i++) {
      const a = ops[i](h.db);
      const b = ops[i](model);
      assertEquals(a.errno, b.errno, `op ${i}: ${labels[i]}`);
      if (a.errno === 0) ok++;
    }
    const sum = toHex(h.db.memdb.treeChecksum());
    assertEquals(toHex(model.treeChecksum()), sum);
    const v = h.db.memdb.version;
    const vms = (m: Memdb) => JSON.stringify([...m.vmlist.vms.entries()].sort());
    // The live VM list follows the original's update rules op by op (it may
    // differ from a rebuild, e.g. after deleting a directory named 100.conf).
    assertEquals(vms(h.db.memdb), vms(model));
    const db = h.reopen(1_800_000_000);
    assertEquals(toHex(db.memdb.treeChecksum()), sum);
    assertEquals(db.memdb.version, v);
    // The sequence must exercise the tree, not bounce off errors.
    if (ok < OPS / 5) throw new Error(`only ${ok} of ${OPS} ops succeeded`);
  });
}

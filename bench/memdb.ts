/**
 * memdb + config.db throughput: create+write 4 KiB, overwrite 4 KiB, read,
 * and the load time of databases with 10 000 and 100 000 files.
 * Run: deno run --allow-all bench/memdb.ts [--dir DIR] (DIR on a real disk for real fsync costs)
 */
import { parseArgs } from "node:util";
import { Database } from "../src/store/database.ts";
import { buildDb } from "./build_db.ts";

const { values } = parseArgs({ options: { dir: { type: "string" } } });
const base = values.dir ?? Deno.makeTempDirSync({ prefix: "pmxcfs-bench-" });
const S = { writer: 0, mtime: 1_700_000_000 };
const block = new Uint8Array(4096).map((_, i) => i & 0xff);

function rate(label: string, n: number, fn: (i: number) => void): void {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const ms = performance.now() - t0;
  console.log(
    `${label.padEnd(34)} ${Math.round(n / (ms / 1000)).toString().padStart(9)} ops/s  (${n} in ${
      ms.toFixed(0)
    } ms)`,
  );
}

function check(r: { errno: number }): void {
  if (r.errno !== 0) throw new Error(`errno ${r.errno}`);
}

{
  const path = `${base}/ops.db`;
  const db = Database.open(path, S.mtime);
  db.apply({ type: "mkdir", path: "d" }, S);
  const N = 5000;
  rate("create+write 4 KiB", N, (i) => {
    check(db.apply({ type: "create", path: `d/f${i}` }, S));
    check(db.apply({ type: "write", path: `d/f${i}`, offset: 0, data: block, truncate: true }, S));
  });
  rate("overwrite 4 KiB", N, (i) => {
    const path = `d/f${i % 100}`;
    check(db.apply({ type: "write", path, offset: 0, data: block, truncate: true }, S));
  });
  rate("read 4 KiB", N * 20, (i) => {
    if (typeof db.memdb.read(`d/f${i % N}`) === "number") throw new Error("read failed");
  });
  db.close();
}

for (const files of [10_000, 100_000]) {
  const path = `${base}/load-${files}.db`;
  buildDb(path, files);
  const t0 = performance.now();
  const again = Database.open(path, S.mtime);
  const ms = performance.now() - t0;
  console.log(
    `load ${files} files (${(Deno.statSync(path).size / 1048576).toFixed(1)} MiB)`.padEnd(34) +
      ` ${ms.toFixed(0).padStart(9)} ms    (${again.memdb.entryCount} entries)`,
  );
  again.close();
}

if (!values.dir) Deno.removeSync(base, { recursive: true });

/**
 * kill -9 during a write loop, then restart: no write whose close() returned
 * may be lost, and no file may hold anything but a whole write (50 trials).
 */
import { latin1Bytes } from "../../src/util/bytes.ts";
import { assert } from "../unit/assert.ts";
import { dataDir, startDaemon } from "./daemon_helpers.ts";
import { systemTestSkipReason } from "./helpers.ts";
import { content } from "./fixtures/writer.ts";

const skip = systemTestSkipReason();
const WRITER = new URL("./fixtures/writer.ts", import.meta.url).pathname;
const TRIALS = Number(Deno.env.get("PMXCFS_CRASH_TRIALS") ?? 50);
const FILES = 8;

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

Deno.test({
  name: `kill -9 during a write loop loses no acknowledged write (${TRIALS} trials)`,
  ignore: skip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    using data = dataDir();
    const acked = new Map<number, number>(); // file -> last acknowledged write index
    let totalAcked = 0;
    for (let t = 0; t < TRIALS; t++) {
      const d = await startDaemon(data.path);
      try {
        // What survived the previous crash must be a whole write, at least the acknowledged one.
        const names = [...Array(FILES).keys()].map((k) => ["read", d.p(`w/f${k}`)]);
        if (t > 0) {
          const got = await d.ops(names);
          for (let k = 0; k < FILES; k++) {
            const last = acked.get(k);
            if (last === undefined) continue;
            assert(got[k].ok, `trial ${t}: f${k} missing (${got[k].code})`);
            const bytes = latin1Bytes(got[k].value as string);
            const m = /^write (\d+)\n/.exec(got[k].value as string);
            const i = m ? Number(m[1]) : -1;
            assert(i >= last, `trial ${t}: f${k} holds write ${i}, acknowledged ${last}`);
            assert(same(bytes, content(i)), `trial ${t}: f${k} is not a whole write ${i}`);
          }
        } else {
          const r = await d.ops([["mkdir", d.p("w")]]);
          assert(r[0].ok);
        }
        // Each trial's writes get their own index range, so every write is told apart.
        const start = String(t * 1_000_000);
        const writer = d.exec([
          Deno.execPath(),
          "run",
          "--allow-all",
          WRITER,
          d.p("w"),
          String(FILES),
          start,
        ]);
        await new Promise((r) => setTimeout(r, 250 + Math.random() * 500));
        d.kill("SIGKILL");
        const out = await writer;
        const lines = out.stdout.trim().split("\n").filter((x) => x !== "").map(Number);
        totalAcked += lines.length;
        for (const i of lines) acked.set(i % FILES, i);
      } finally {
        await d.stop(1000);
      }
    }
    assert(totalAcked > TRIALS, `only ${totalAcked} acknowledged writes in ${TRIALS} trials`);
  },
});

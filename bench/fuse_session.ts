/**
 * FUSE session throughput: stat and open+read+close loops against the toy filesystem
 * (tests/system/fixtures/toy_fs_server.ts, attr/entry timeout 0 so every call reaches the
 * server), for each loop mode: no drain, drain until EAGAIN, drain with a short synchronous
 * wait for the next request. Needs root and /dev/fuse; runs in a private mount namespace.
 *
 * Usage: `deno run -A bench/fuse_session.ts [seconds]` (the servers it starts get the flags of
 * src/daemon/deno_flags.ts).
 * @module
 */
import { startInMountNamespace, systemTestSkipReason } from "../tests/system/helpers.ts";

const seconds = Number(Deno.args[0] ?? "2");
const skip = systemTestSkipReason();
if (skip) {
  console.log(`bench/fuse_session: skipped: ${skip}`);
  Deno.exit(0);
}

const CLIENT = (op: string, path: string, ms: number) => `
const p = ${JSON.stringify(path)}; const buf = new Uint8Array(4096);
const end = performance.now() + ${ms}; let n = 0; const t0 = performance.now();
while (performance.now() < end) {
  for (let i = 0; i < 50; i++) {
    ${
  op === "stat" ? "Deno.statSync(p);" : "const f = Deno.openSync(p); f.readSync(buf); f.close();"
}
  }
  n += 50;
}
console.log(JSON.stringify({ n, ms: performance.now() - t0 }));`;

const modes: [string, string[]][] = [
  ["no drain", ["--no-drain"]],
  ["drain", ["--drain-wait-us=0"]],
  ["drain+wait50us", ["--drain-wait-us=50"]],
  ["drain+wait200us", ["--drain-wait-us=200"]],
];

console.log(`op                  mode              ops/s     requests/s  req/op  wakeups/req`);
for (const op of ["stat", "open+read+close"]) {
  for (const [mode, flags] of modes) {
    const srv = await startInMountNamespace({
      script: new URL("../tests/system/fixtures/toy_fs_server.ts", import.meta.url),
      args: ["{mountpoint}", "--timeout=0", ...flags],
    });
    try {
      const r = await srv.exec([
        Deno.execPath(),
        "eval",
        CLIENT(op, `${srv.mountpoint}/hello.txt`, seconds * 1000),
      ], { timeoutMs: seconds * 1000 + 30000 });
      if (r.code !== 0) throw new Error(r.stderr);
      const c = JSON.parse(r.stdout.trim());
      await srv.stop();
      const line = srv.stdout().trim().split("\n").find((l) => l.includes('"stats"'));
      const stats = JSON.parse(line!).stats as { requests: number; wakeups: number };
      const opsS = c.n / (c.ms / 1000);
      const reqS = stats.requests / (c.ms / 1000);
      console.log(
        `${op.padEnd(20)}${mode.padEnd(18)}${opsS.toFixed(0).padStart(8)}  ${
          reqS.toFixed(0).padStart(11)
        }  ${(stats.requests / c.n).toFixed(2).padStart(6)}  ${
          (stats.wakeups / stats.requests).toFixed(2).padStart(11)
        }`,
      );
    } finally {
      await srv.stop();
    }
  }
}

/**
 * Filesystem benchmark of the daemon (main.ts) against tmpfs, with the same loops run by a
 * separate client process (synchronous Deno APIs, so each op is a real syscall sequence):
 * stat, create+write 4 KiB, overwrite 4 KiB, read 64 KiB, readdir of 1000 entries; then the
 * start-up time with 10 000 / 100 000 files, the peak RSS, and the disk bytes written per change.
 * Prints figures only; a MISS never makes it exit non-zero.
 *
 * Run: `deno run --allow-all bench/fs.ts [--quick]` (root, /dev/fuse, util-linux).
 * `--requests` instead prints the daemon's syscalls per op (strace), to count FUSE requests.
 *
 * Process layout (nothing is ever mounted in the host mount namespace):
 *   outer  (this script)  makes a temp dir under /var/tmp (a real disk), removes it at the end
 *   └ setpriv --pdeathsig KILL unshare --mount --propagation private  deno run fs.ts --inner
 *     ├ tmpfs mounted at BASE/tmpfs; daemons mount at BASE/mnt-N (private namespace)
 *     ├ setpriv --pdeathsig KILL deno run main.ts -f ...           (the daemon)
 *     └ deno run fs.ts --client JSON                                (the loops; not the daemon)
 * The namespace, with every mount in it, disappears when its last process exits; every child
 * has a parent-death signal, so killing the outer process leaves nothing running.
 * @module
 */

const SELF = new URL(import.meta.url).pathname;
import { DENO_RUN_FLAGS } from "../src/daemon/deno_flags.ts";
import { buildDb } from "./build_db.ts";
import { privateMountNs } from "../tests/system/helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const dec = new TextDecoder();

// ================================================================================================
// client: the loops (runs inside the namespace, in its own process)
// ================================================================================================

interface ClientJob {
  root: string;
  /** The five throughput loops with these counts. */
  loops?: { stat: number; create: number; overwrite: number; read: number; readdir: number };
  /** Skip the (untimed) setup of the loops: it was done by an earlier client. */
  skipSetup?: boolean;
  /** Prefix of the names the create loop makes (unique per client run). */
  tag?: string;
  /** Disk series: prepare (untimed), or run. */
  disk?: { op: "prepare" | "overwrite4000" | "edit4000" | "new1m"; n: number };
}

type LoopResult = Record<string, { n: number; ms: number }>;

function writeAll(f: Deno.FsFile, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += f.writeSync(data.subarray(off));
}

function putFile(path: string, data: Uint8Array): void {
  const f = Deno.openSync(path, { write: true, create: true, truncate: true });
  writeAll(f, data);
  f.close();
}

function timed(n: number, fn: (i: number) => void): { n: number; ms: number } {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return { n, ms: performance.now() - t0 };
}

function client(job: ClientJob): unknown {
  const r = job.root;
  const b4k = new Uint8Array(4096).fill(0x61);
  const b64k = new Uint8Array(65536).map((_, i) => i & 0xff);
  if (job.disk) {
    const b4000 = new Uint8Array(4000).fill(0x62);
    const b1m = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    const { op, n } = job.disk;
    if (op === "prepare") {
      putFile(`${r}/ow4000.txt`, b4000);
      Deno.mkdirSync(`${r}/big`);
      return { ok: true };
    }
    if (op === "overwrite4000" || op === "edit4000") {
      // overwrite: every byte differs from the previous version (the worst case);
      // edit: one 40-byte line differs, as when an administrator changes one setting.
      return timed(n, (i) => {
        if (op === "overwrite4000") b4000.fill(0x61 + (i % 26));
        else b4000.fill(0x61 + (i % 26), 2000, 2040);
        const f = Deno.openSync(`${r}/ow4000.txt`, { write: true, truncate: true });
        if (f.writeSync(b4000) !== 4000) throw new Error("short write");
        f.close();
      });
    }
    return timed(n, (i) => {
      const f = Deno.openSync(`${r}/big/f${i}`, { write: true, createNew: true });
      // ONE write(2) of 1 MiB (the kernel splits it into max_write-sized FUSE requests).
      if (f.writeSync(b1m) !== b1m.length) throw new Error("short write");
      f.close();
    });
  }

  const n = job.loops!;
  const tag = job.tag ?? "";
  if (!job.skipSetup) {
    // Setup, untimed: the files and a 1000-entry directory.
    putFile(`${r}/stat.txt`, b4k.subarray(0, 100));
    putFile(`${r}/ow.txt`, b4k);
    putFile(`${r}/r64`, b64k);
    Deno.mkdirSync(`${r}/c`);
    Deno.mkdirSync(`${r}/d`);
    for (let i = 0; i < 1000; i++) {
      Deno.openSync(`${r}/d/entry${i}`, { write: true, create: true }).close();
    }
  }

  const res: LoopResult = {};
  const statPath = `${r}/stat.txt`;
  res.stat = timed(n.stat, () => void Deno.statSync(statPath));
  res.create = timed(n.create, (i) => {
    const f = Deno.openSync(`${r}/c/${tag}f${i}`, { write: true, createNew: true });
    if (f.writeSync(b4k) !== 4096) throw new Error("short write");
    f.close();
  });
  res.overwrite = timed(n.overwrite, () => {
    const f = Deno.openSync(`${r}/ow.txt`, { write: true, truncate: true });
    if (f.writeSync(b4k) !== 4096) throw new Error("short write");
    f.close();
  });
  const rbuf = new Uint8Array(2 * 65536);
  res.read = timed(n.read, () => {
    const f = Deno.openSync(`${r}/r64`, { read: true });
    let got = 0;
    for (;;) {
      const k = f.readSync(rbuf.subarray(got));
      if (k === null) break;
      got += k;
    }
    f.close();
    if (got !== 65536) throw new Error(`read ${got} bytes`);
  });
  res.readdir = timed(n.readdir, () => {
    let k = 0;
    for (const _ of Deno.readDirSync(`${r}/d`)) k++;
    if (k !== 1000) throw new Error(`readdir saw ${k} entries`);
  });
  return res;
}

// ================================================================================================
// inner: inside the private mount namespace
// ================================================================================================

interface Proc {
  child: Deno.ChildProcess;
  out: () => string;
  done: () => boolean;
  status: Promise<Deno.CommandStatus>;
}

const live = new Set<Proc>();

function spawn(argv: string[]): Proc {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "";
  let done = false;
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) {
      out += dec.decode(c, { stream: true });
      if (out.length > 200_000) out = out.slice(-100_000);
    }
  };
  const readers = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const status = child.status.then(async (s) => {
    done = true;
    await readers;
    return s;
  });
  const p: Proc = { child, out: () => out, done: () => done, status };
  live.add(p);
  status.then(() => live.delete(p));
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after `graceMs`. */
async function stopProc(p: Proc, graceMs = 10000, pid?: number): Promise<Deno.CommandStatus> {
  if (!p.done()) {
    try {
      if (pid !== undefined) Deno.kill(pid, "SIGTERM");
      else p.child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
        if (pid !== undefined) Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    await p.status;
    clearTimeout(t);
  }
  return await p.status;
}

function daemonArgv(data: string, mnt: string): string[] {
  return [
    DENO,
    "run",
    ...DENO_RUN_FLAGS,
    MAIN,
    "-f",
    "--mount",
    mnt,
    "--data-dir",
    data,
    "--run-dir",
    `${data}/run`,
    "--pid-file",
    `${data}/pid`,
    "--nodename",
    "pve1",
    "--corosync-conf",
    `${data}/none`,
  ];
}

function isSymlink(path: string): boolean {
  try {
    return Deno.lstatSync(path).isSymlink;
  } catch {
    return false;
  }
}

interface Daemon {
  proc: Proc;
  pid: number;
  mnt: string;
  data: string;
  /** ms from spawn until `<mnt>/local` is a symlink. */
  readyMs: number;
}

let mounts = 0;
const DISK_DB_FILES = 1000;

/**
 * Starts the daemon on `data`. With `ioWrapper`, a `sh` sits between us and the daemon: it reaps
 * the daemon (the kernel then adds the daemon's I/O counters to the sh's) and prints its own
 * /proc/self/io after "IO-AFTER", so the bytes written while closing (the final WAL checkpoint)
 * are counted too.
 */
async function startDaemon(base: string, data: string, ioWrapper = false): Promise<Daemon> {
  const mnt = `${base}/mnt-${++mounts}`;
  Deno.mkdirSync(mnt);
  const argv = ["/usr/bin/setpriv", "--pdeathsig", "KILL", ...daemonArgv(data, mnt)];
  const t0 = performance.now();
  const proc = spawn(
    ioWrapper
      ? [
        "/usr/bin/setpriv",
        "--pdeathsig",
        "KILL",
        "/bin/sh",
        "-c",
        `"$@" & wait $!; echo IO-AFTER; cat /proc/$$/io`,
        "sh",
        ...argv,
      ]
      : argv,
  );
  const deadline = Date.now() + 60000;
  while (!isSymlink(`${mnt}/local`)) {
    if (proc.done() || Date.now() > deadline) {
      await stopProc(proc, 1000);
      throw new Error(`daemon did not come up:\n${proc.out()}`);
    }
    await sleep(2);
  }
  const readyMs = performance.now() - t0;
  const pid = ioWrapper ? Number(Deno.readTextFileSync(`${data}/pid`).trim()) : proc.child.pid;
  return { proc, pid, mnt, data, readyMs };
}

async function stopDaemon(d: Daemon): Promise<Deno.CommandStatus> {
  return await stopProc(d.proc, 10000, d.pid);
}

async function runClient(job: ClientJob): Promise<unknown> {
  const r = await new Deno.Command("/usr/bin/setpriv", {
    args: [
      "--pdeathsig",
      "KILL",
      DENO,
      "run",
      "--allow-all",
      SELF,
      "--client",
      JSON.stringify(job),
    ],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  if (r.code !== 0) throw new Error(`client failed: ${dec.decode(r.stderr)}`);
  return JSON.parse(dec.decode(r.stdout));
}

function procIo(text: string): { write: number; cancelled: number } {
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { write: get("write_bytes"), cancelled: get("cancelled_write_bytes") };
}

function netWritten(pid: number): number {
  const io = procIo(Deno.readTextFileSync(`/proc/${pid}/io`));
  return io.write - io.cancelled;
}

async function syncFs(path: string): Promise<void> {
  await new Deno.Command("/usr/bin/sync", { args: ["-f", path] }).output();
}

const fmtRate = (x: { n: number; ms: number }) =>
  Math.round(x.n / (x.ms / 1000)).toLocaleString("en-US");
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

/** Parses `strace -c` output into syscall -> calls. */
function straceCounts(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 5 && /^[\d.]+$/.test(f[0]) && /^[a-z_0-9]+$/.test(f[f.length - 1])) {
      m.set(f[f.length - 1], Number(f[3]));
    }
  }
  return m;
}

/**
 * --requests: syscalls of the daemon per client op, with `strace -f -c` attached only while one
 * loop runs. writev = replies + notifications on /dev/fuse (libfuse answers with writev),
 * read = requests received (plus a few runtime wake-ups), pwrite64/fdatasync = SQLite.
 */
async function requestCounts(base: string): Promise<void> {
  const data = `${base}/data-requests`;
  const d = await startDaemon(base, data);
  const zero = { stat: 0, create: 0, overwrite: 0, read: 0, readdir: 0 };
  try {
    const root = `${d.mnt}/bench`;
    Deno.mkdirSync(root);
    await runClient({ root, loops: zero });
    console.log(`\ndaemon syscalls per client op (strace -f -c attached to the daemon)`);
    console.log(
      `${"loop".padEnd(12)}${"n".padStart(6)}${"writev".padStart(9)}${"read".padStart(8)}` +
        `${"pwrite64".padStart(10)}${"fdatasync".padStart(11)}${"fsync".padStart(7)}`,
    );
    const plan: [keyof typeof zero, number][] = [
      ["stat", 2000],
      ["create", 200],
      ["overwrite", 200],
      ["read", 200],
      ["readdir", 20],
    ];
    for (const [k, n] of plan) {
      const out = `${base}/strace-${k}.txt`;
      const st = spawn([
        "/usr/bin/setpriv",
        "--pdeathsig",
        "KILL",
        "/usr/bin/strace",
        "-f",
        "-c",
        "-o",
        out,
        "-e",
        "trace=read,readv,splice,writev,write,pwrite64,fdatasync,fsync",
        "-p",
        String(d.pid),
      ]);
      await sleep(500); // attach to every thread
      await runClient({ root, loops: { ...zero, [k]: n }, skipSetup: true, tag: "s" });
      st.child.kill("SIGINT");
      await st.status;
      const c = straceCounts(Deno.readTextFileSync(out));
      const per = (name: string) => ((c.get(name) ?? 0) / n).toFixed(2);
      console.log(
        `${k.padEnd(12)}${String(n).padStart(6)}${per("writev").padStart(9)}${
          per("read").padStart(8)
        }${per("pwrite64").padStart(10)}${per("fdatasync").padStart(11)}${
          per("fsync").padStart(7)
        }`,
      );
    }
  } finally {
    await stopDaemon(d);
  }
}

async function inner(base: string, quick: boolean, requests: boolean): Promise<void> {
  if (requests) return await requestCounts(base);
  const tmpfs = `${base}/tmpfs`;
  Deno.mkdirSync(tmpfs);
  const m = await new Deno.Command("/usr/bin/mount", {
    args: ["-t", "tmpfs", "-o", "size=512m", "tmpfs", tmpfs],
  }).output();
  if (m.code !== 0) throw new Error(`mount tmpfs: ${dec.decode(m.stderr)}`);

  // ---- 1-5: throughput loops ------------------------------------------------------------
  const loops = quick
    ? { stat: 20000, create: 200, overwrite: 200, read: 1000, readdir: 50 }
    : { stat: 100000, create: 1000, overwrite: 1000, read: 5000, readdir: 200 };
  // Each side runs the same client `rounds` times, alternating mount and tmpfs; the best round
  // of each side counts (the runs are short, so single rounds are noisy).
  const rounds = quick ? 1 : 3;
  const best = (a: LoopResult | undefined, b: LoopResult): LoopResult => {
    if (!a) return b;
    const r: LoopResult = {};
    for (const k of Object.keys(b)) r[k] = a[k].n / a[k].ms >= b[k].n / b[k].ms ? a[k] : b[k];
    return r;
  };
  // config.db on the real disk, like /var/lib/pve-cluster.
  const data = `${base}/data-loops`;
  const d = await startDaemon(base, data);
  let onMount: LoopResult | undefined;
  let onTmpfs: LoopResult | undefined;
  try {
    Deno.mkdirSync(`${d.mnt}/bench`);
    Deno.mkdirSync(`${tmpfs}/bench`);
    for (let round = 0; round < rounds; round++) {
      for (const [root, side] of [[`${d.mnt}/bench`, "m"], [`${tmpfs}/bench`, "t"]] as const) {
        const r = await runClient({ root, loops, skipSetup: round > 0, tag: `r${round}` });
        if (side === "m") onMount = best(onMount, r as LoopResult);
        else onTmpfs = best(onTmpfs, r as LoopResult);
      }
    }
  } finally {
    await stopDaemon(d);
  }

  const rows: [string, string, number, number][] = [
    // key, label, C daemon ratio, target factor over it
    ["stat", "stat", 0.74, 1],
    ["create", "create+write 4 KiB+close", 0.064, 2],
    ["overwrite", "overwrite 4 KiB (O_TRUNC)", 0.073, 2],
    ["read", "open+read 64 KiB+close", 0.062, 5],
    ["readdir", "readdir 1000 entries", 0.23, 1],
  ];
  console.log(
    `\nbest of ${rounds} round(s) per side\n${"loop".padEnd(27)}${"n".padStart(7)}${
      "mount op/s".padStart(12)
    }${"tmpfs op/s".padStart(12)}${"ratio".padStart(8)}${"C ratio".padStart(9)}${
      "target".padStart(8)
    }  result`,
  );
  for (const [k, label, c, f] of rows) {
    const a = onMount![k], b = onTmpfs![k];
    const ratio = (a.n / a.ms) / (b.n / b.ms);
    const target = c * f;
    console.log(
      `${label.padEnd(27)}${String(a.n).padStart(7)}${fmtRate(a).padStart(12)}${
        fmtRate(b).padStart(12)
      }${ratio.toFixed(3).padStart(8)}${c.toFixed(3).padStart(9)}${
        (">=" + target.toFixed(2)).padStart(8)
      }  ${ratio >= target ? "PASS" : "MISS"}`,
    );
  }

  // ---- 6: start-up time and peak RSS ------------------------------------------------------
  console.log(`\nstart-up until <mount>/local is a symlink (config.db on disk, page cache warm)`);
  const sizes = quick ? [0, 10_000] : [0, 10_000, 100_000];
  for (const files of sizes) {
    const dir = `${base}/data-start-${files}`;
    Deno.mkdirSync(dir);
    let buildMs = 0;
    if (files > 0) {
      const t0 = performance.now();
      buildDb(`${dir}/config.db`, files);
      buildMs = performance.now() - t0;
    }
    const s = await startDaemon(base, dir);
    let status = "";
    try {
      status = Deno.readTextFileSync(`/proc/${s.pid}/status`);
    } finally {
      await stopDaemon(s);
    }
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    const dbMiB = files > 0 ? Deno.statSync(`${dir}/config.db`).size / 1048576 : 0;
    console.log(
      `  ${String(files).padStart(7)} files ${
        files ? `(${dbMiB.toFixed(1)} MiB db, built in ${buildMs.toFixed(0)} ms)` : "(new db)"
      }`.padEnd(48) +
        `${s.readyMs.toFixed(0).padStart(6)} ms   VmHWM ${(kb("VmHWM") / 1024).toFixed(0)} MiB` +
        `  VmRSS ${(kb("VmRSS") / 1024).toFixed(0)} MiB`,
    );
    Deno.removeSync(dir, { recursive: true });
  }

  // ---- 7: disk bytes written per change -------------------------------------------------------
  // write_bytes is charged to the task that dirties a page-cache page, when the page goes from
  // clean to dirty; writeback (by the flusher or by `sync`) is not charged to anyone. So a
  // `sync` AFTER the series changes nothing; a `sync` BEFORE it does matter: pages still dirty
  // from the setup (the WAL tail, the db pages) would absorb the series' first writes to them
  // uncounted. We sync before the "before" reading. SQLite (WAL, synchronous=NORMAL) appends
  // frames to the WAL at commit and copies pages into config.db at checkpoints (automatic every
  // ~1000 WAL pages, and once more when the last connection closes). To count every byte the
  // series costs, the series ends by stopping the daemon: its close-time checkpoint is included
  // via the sh wrapper that reaps it (see startDaemon). "in-run" = counted while it was running
  // (WAL appends + any automatic checkpoints); "total" = including the final checkpoint.
  console.log(
    `\ndisk bytes written per change (config.db with ${DISK_DB_FILES} files on ${base}, ` +
      `daemon /proc/PID/io)`,
  );
  const series: [ClientJob["disk"] & object, string, number, number][] = [
    [{ op: "overwrite4000", n: 200 }, "overwrite 4000 B, all new bytes", 4000, 4],
    [{ op: "edit4000", n: 200 }, "overwrite 4000 B, one line changed", 4000, 4],
    [{ op: "new1m", n: 20 }, "new file 1 MiB (1 write of 1 MiB)", 1 << 20, 10],
  ];
  for (const [job, label, size, cRatio] of series) {
    const dir = `${base}/data-disk-${job.op}`;
    // A realistic tree (1000 files of 512 B): in a near-empty database the changed row and the
    // version row share one b-tree page, which flatters the figures.
    Deno.mkdirSync(dir);
    buildDb(`${dir}/config.db`, DISK_DB_FILES);
    const s = await startDaemon(base, dir, true);
    let inRun = 0, total = 0, ms = 0, walMiB = 0;
    try {
      await runClient({ root: s.mnt, disk: { op: "prepare", n: 0 } });
      await syncFs(dir);
      const shPid = s.proc.child.pid;
      const before = netWritten(shPid) + netWritten(s.pid);
      const daemonBefore = netWritten(s.pid);
      ms = ((await runClient({ root: s.mnt, disk: job })) as { ms: number }).ms;
      inRun = netWritten(s.pid) - daemonBefore;
      try {
        walMiB = Deno.statSync(`${dir}/config.db-wal`).size / 1048576;
      } catch { /* none */ }
      const st = await stopDaemon(s);
      const out = s.proc.out();
      const at = out.lastIndexOf("IO-AFTER");
      if (at < 0) throw new Error(`no IO-AFTER from the wrapper (exit ${st.code}):\n${out}`);
      const after = procIo(out.slice(at));
      total = after.write - after.cancelled - before;
    } finally {
      await stopDaemon(s);
      Deno.removeSync(dir, { recursive: true });
    }
    const per = (b: number) => b / job.n;
    console.log(
      `  ${label.padEnd(36)} x${String(job.n).padEnd(4)} in-run ${kib(per(inRun)).padStart(10)}` +
        ` (${(per(inRun) / size).toFixed(2)}x)  total ${kib(per(total)).padStart(10)}` +
        ` (${(per(total) / size).toFixed(2)}x)  C ${cRatio}x  target <=1.5x  ${
          per(total) / size <= 1.5 ? "PASS" : "MISS"
        }   [${(job.n / (ms / 1000)).toFixed(0)} op/s, WAL file ${walMiB.toFixed(1)} MiB]`,
    );
  }
}

// ================================================================================================
// outer: temp dir, private namespace, cleanup
// ================================================================================================

async function outer(quick: boolean, requests: boolean): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("bench/fs.ts needs root (FUSE mount, mount namespace)");
    return 0;
  }
  const base = Deno.makeTempDirSync({ dir: "/var/tmp", prefix: "pmxcfs-bench-fs-" });
  const fsType = dec.decode(
    (await new Deno.Command("/usr/bin/stat", { args: ["-f", "-c", "%T", base] }).output()).stdout,
  ).trim();
  console.log(
    `pmxcfs-ts bench/fs.ts${quick ? " --quick" : ""}: deno ${Deno.version.deno}, ` +
      `${navigator.hardwareConcurrency} cpus, temp dir ${base} (${fsType})`,
  );
  if (fsType === "tmpfs") console.log("WARNING: /var/tmp is tmpfs, disk figures are meaningless");
  const [setpriv, ...prefix] = privateMountNs();
  const child = new Deno.Command(setpriv, {
    args: [
      ...prefix,
      DENO,
      "run",
      "--allow-all",
      SELF,
      "--inner",
      base,
      ...(quick ? ["--quick"] : []),
      ...(requests ? ["--requests"] : []),
    ],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const onSignal = () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
  };
  for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, onSignal);
  const t0 = performance.now();
  try {
    const st = await child.status;
    console.log(`\ndone in ${((performance.now() - t0) / 1000).toFixed(1)} s (exit ${st.code})`);
    return st.code;
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(s, onSignal);
    // The namespace (and its mounts) is gone with the inner process; only directories remain.
    Deno.removeSync(base, { recursive: true });
  }
}

if (import.meta.main) {
  const a = Deno.args;
  if (a[0] === "--client") {
    console.log(JSON.stringify(client(JSON.parse(a[1]))));
  } else if (a[0] === "--inner") {
    let code = 0;
    const stopAll = async () => {
      await Promise.all([...live].map((p) => stopProc(p, 3000)));
    };
    const onSignal = () => void stopAll().then(() => Deno.exit(130));
    Deno.addSignalListener("SIGTERM", onSignal);
    Deno.addSignalListener("SIGINT", onSignal);
    try {
      await inner(a[1], a.includes("--quick"), a.includes("--requests"));
    } catch (e) {
      console.error(`bench/fs.ts failed: ${(e as Error).stack ?? e}`);
      code = 1;
    } finally {
      await stopAll();
    }
    Deno.exit(code);
  } else {
    Deno.exit(await outer(a.includes("--quick"), a.includes("--requests")));
  }
}

/**
 * The daemon's life (spec 11.3, 11.5) in local mode: lock, open the
 * database, mount, serve until a signal or an unmount, clean up.
 */
import { Database } from "../store/database.ts";
import { PveFs } from "../fs/pve_fs.ts";
import { PveHandler } from "../fuse/pve_handler.ts";
import { FuseSession } from "../fuse/session.ts";
import { DENO_RUN_FLAGS } from "./deno_flags.ts";
import { PollLoop } from "./poll_loop.ts";
import type { DaemonConfig } from "./config.ts";
import { wwwDataGid } from "./config.ts";
import { Log } from "./log.ts";
import { detachStdio, lazyUnmount, openSyslog, setsid, tryLockFile, umask } from "./posix.ts";

/** Start-up failures exit with this status, like the original. */
export const EXIT_STARTUP = 255;

export class StartupError extends Error {}

/**
 * The daemon's clock in seconds. Tests may set it: PMXCFS_TEST_CLOCK_FILE
 * names a file holding the time to report (lock expiry without waiting).
 */
const clockFile = Deno.env.get("PMXCFS_TEST_CLOCK_FILE");
function now(): number {
  if (clockFile) {
    try {
      const t = Number(Deno.readTextFileSync(clockFile).trim());
      if (Number.isFinite(t) && t > 0) return Math.floor(t);
    } catch { /* no clock set yet: real time */ }
  }
  return Math.floor(Date.now() / 1000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function acquireLock(path: string, log: ReturnType<Log["domain"]>): Promise<number> {
  for (let i = 0; i <= 10; i++) {
    const r = tryLockFile(path);
    if ("fd" in r) return r.fd;
    if (i === 0) log("notice", `unable to acquire pmxcfs lock ${path} - trying again`);
    if (i < 10) await sleep(1000);
  }
  throw new StartupError(`unable to acquire pmxcfs lock ${path}: another instance is running`);
}

function mountedAt(path: string): boolean {
  try {
    const real = Deno.realPathSync(path);
    return Deno.readTextFileSync("/proc/self/mounts").split("\n").some((l) =>
      l.split(" ")[1] === real
    );
  } catch (e) {
    // ENOTCONN from a dead FUSE server lands here too: that is a (stale) mount.
    return !(e instanceof Deno.errors.NotFound);
  }
}

function writePidFile(path: string, pid: number): void {
  const tmp = `${path}.tmp.${Deno.pid}`;
  Deno.writeTextFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  Deno.chmodSync(tmp, 0o644);
  Deno.renameSync(tmp, path);
}

function createRestartFlag(runDir: string, gid: number): void {
  const flag = `${runDir}/cfs-restart-flag`;
  try {
    Deno.writeTextFileSync(flag, "", { mode: 0o440 });
    Deno.chmodSync(flag, 0o440);
    Deno.chownSync(flag, 0, gid);
  } catch {
    // best effort: the flag only shortens client retries
  }
}

/**
 * Runs the daemon in the foreground until it is told to stop. `ready` is
 * called once the mount answers (the background parent waits for it).
 */
export async function runDaemon(
  cfg: DaemonConfig,
  ready: (log: Log) => void = () => {},
  writePid = true,
): Promise<number> {
  const logger = new Log();
  logger.debug = cfg.debug;
  const log = logger.domain("main");
  umask(0o027);
  const gid = wwwDataGid();

  Deno.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o750 });
  Deno.mkdirSync(cfg.runDir, { recursive: true, mode: 0o750 });
  try {
    Deno.chownSync(cfg.runDir, 0, gid);
  } catch (e) {
    log("warn", `cannot chown ${cfg.runDir}: ${(e as Error).message}`);
  }

  const lockFd = await acquireLock(`${cfg.dataDir}/.pmxcfs.lockfile`, log);
  void lockFd; // held (and the lock with it) until the process exits
  const starttime = now();

  const dbPath = `${cfg.dataDir}/config.db`;
  const isNew = !existsFile(dbPath);
  let db: Database;
  try {
    db = Database.open(dbPath, starttime, logger.domain("database"));
  } catch (e) {
    throw new StartupError(`DB load failed for ${dbPath}: ${(e as Error).message}`);
  }

  try {
    if (isNew && !cfg.local) importCorosyncConf(db, cfg.corosyncConf, log);
    if (db.memdb.lookup("corosync.conf")) {
      if (cfg.local) {
        log("notice", "forcing local mode (although corosync.conf exists)");
      } else {
        throw new StartupError(
          "corosync.conf is in the database but this version has no cluster mode yet: " +
            "start with -l/--local to serve the tree in local mode",
        );
      }
    }

    const fs = new PveFs(db, {
      nodename: cfg.nodename,
      wwwGid: gid,
      starttime,
      now,
      quorate: () => true,
      writer: 0,
      debug: {
        get: () => logger.debug,
        set: (on) => {
          logger.debug = on;
        },
      },
    });
    const handler = new PveHandler(fs);

    // We hold the instance lock, so anything mounted here is left over from a killed daemon.
    if (mountedAt(cfg.mount)) {
      const e = lazyUnmount(cfg.mount);
      log(
        e ? "warn" : "notice",
        `cleaned up a stale mount at ${cfg.mount}${e ? ` (errno ${e})` : ""}`,
      );
    }
    try {
      Deno.mkdirSync(cfg.mount, { recursive: true, mode: 0o750 });
    } catch (e) {
      throw new StartupError(`cannot create mount point ${cfg.mount}: ${(e as Error).message}`);
    }
    let session: FuseSession;
    try {
      session = FuseSession.mount(handler, {
        mountpoint: cfg.mount,
        fsname: "/dev/fuse",
        options: ["default_permissions", "allow_other"],
      });
    } catch (e) {
      throw new StartupError(`cannot mount ${cfg.mount}: ${(e as Error).message}`);
    }
    handler.invalidate = { inode: (ino) => void session.notifyInvalInode(ino, 0, 0) };
    const stop = () => session.stop();
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];
    for (const s of signals) Deno.addSignalListener(s, stop);

    if (writePid) writePidFile(cfg.pidFile, Deno.pid);
    try {
      Deno.removeSync(`${cfg.runDir}/cfs-restart-flag`);
    } catch { /* not there */ }
    log("info", `mounted ${cfg.mount} in local mode (node ${cfg.nodename})`);
    ready(logger);

    const loop = new PollLoop();
    await loop.runUntil(session.serve(loop));
    for (const s of signals) Deno.removeSignalListener(s, stop);
    handler.commitAll();
    log("info", "unmounted, exiting");
    return 0;
  } finally {
    createRestartFlag(cfg.runDir, gid);
    db.close();
    removePidFileIfOurs(cfg.pidFile);
  }
}

/** Removes the pid file on exit when it names this process (ours or the parent's write). */
function removePidFileIfOurs(path: string): void {
  try {
    if (Deno.readTextFileSync(path).trim() === String(Deno.pid)) Deno.removeSync(path);
  } catch { /* not there */ }
}

function existsFile(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Spec 11.3 step 9: a new database takes the host's corosync.conf. Beyond
 * the original, only a config carrying a `config_version` is taken (Debian's
 * placeholder has none, and spec 11.4 could never sync such a file anyway).
 */
function importCorosyncConf(db: Database, path: string, log: ReturnType<Log["domain"]>): void {
  let data: Uint8Array;
  try {
    data = Deno.readFileSync(path);
  } catch {
    return;
  }
  const text = new TextDecoder().decode(data);
  const m = /config_version\s*:\s*(\d+)/.exec(text);
  if (!m || Number(m[1]) === 0) {
    log("notice", `not importing ${path}: it has no config_version (not a cluster config)`);
    return;
  }
  const s = { writer: 0, mtime: now() };
  const r = db.create("corosync.conf", s);
  const w = r.errno === 0 ? db.write("corosync.conf", s, data, 0, true) : r;
  if (w.errno !== 0) throw new StartupError(`cannot import ${path}: errno ${w.errno}`);
  log("notice", `imported ${path} into the new database`);
}

/**
 * Background mode (spec 11.3 step 13): the parent starts the same program in
 * the foreground with `--daemon-child`, waits for its "1" on stdout, writes
 * the pid file with the child's pid and exits 0; anything else kills the
 * child and exits 255.
 */
export async function daemonize(cfg: DaemonConfig, argv: string[]): Promise<number> {
  const exe = Deno.execPath();
  const compiled = !/\/deno$/.test(exe);
  const self = new URL("../../main.ts", import.meta.url).pathname;
  const args = compiled ? [...argv, "--daemon-child"] : [
    "run",
    ...DENO_RUN_FLAGS,
    self,
    ...argv,
    "--daemon-child",
  ];
  const child = new Deno.Command(exe, { args, stdin: "null", stdout: "piped", stderr: "inherit" })
    .spawn();
  const reader = child.stdout.getReader();
  let got = "";
  try {
    while (!got.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
  } catch { /* child died */ }
  if (got.trim() !== "1") {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    const st = await child.status;
    return st.code === 0 ? EXIT_STARTUP : st.code;
  }
  writePidFile(cfg.pidFile, child.pid);
  reader.releaseLock();
  child.unref();
  return 0;
}

/**
 * In the background child: tell the parent we are ready, leave its session
 * and its descriptors (a supervisor reading our output must see it end), and
 * log to syslog from then on.
 */
export function signalReadyToParent(log: Log): void {
  Deno.stdout.writeSync(new TextEncoder().encode("1\n"));
  setsid();
  log.syslog = openSyslog();
  detachStdio(true);
}

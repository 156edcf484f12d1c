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
import { LocalCommitter } from "./local_committer.ts";
import { tracedHandler } from "../fuse/trace.ts";
import type { DaemonConfig } from "./config.ts";
import { childArgv, EXIT_STARTUP, wwwDataGid } from "./config.ts";
import { fileSink, type Log, logger } from "./log.ts";
import {
  detachStdio,
  EROFS,
  EWOULDBLOCK,
  lazyUnmount,
  openSyslog,
  setsid,
  strerror,
  SYSLOG_SOCKET,
  syslogUnreachable,
  tryLockFile,
  umask,
} from "./posix.ts";
import { isValidNodeName } from "../memdb/path.ts";
import { errnoName } from "../util/errno.ts";

export { EXIT_STARTUP };

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

/** The reason of a Deno error without its "(os error N): syscall 'path'" tail. */
function why(e: unknown): string {
  const m = (e as Error).message ?? String(e);
  return /^(.*?) \(os error \d+\)/.exec(m)?.[1] ?? m;
}

/** Creates `path` (0750) when missing; a file or an unusable path in its place is fatal. */
function ensureDir(path: string, what: string): void {
  try {
    if (Deno.statSync(path).isDirectory) return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new StartupError(`cannot use ${what} ${path}: ${why(e)}`);
    }
    try {
      Deno.mkdirSync(path, { recursive: true, mode: 0o750 });
      return;
    } catch (e) {
      throw new StartupError(`cannot create ${what} ${path}: ${why(e)}`);
    }
  }
  throw new StartupError(`${what} ${path} is not a directory`);
}

/**
 * The pid file's directory must exist (the run directory, which start-up
 * creates, excepted): the pid file is written only after the mount.
 */
function checkPidFileDir(pidFile: string, runDir: string): void {
  const dir = pidFile.slice(0, pidFile.lastIndexOf("/")) || "/";
  if (dir === runDir) return;
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(dir);
  } catch (e) {
    throw new StartupError(
      e instanceof Deno.errors.NotFound
        ? `cannot write pid file ${pidFile}: directory ${dir} does not exist`
        : `cannot write pid file ${pidFile}: ${dir}: ${why(e)}`,
    );
  }
  if (!st.isDirectory) {
    throw new StartupError(`cannot write pid file ${pidFile}: ${dir} is not a directory`);
  }
  try {
    if (Deno.statSync(pidFile).isDirectory) {
      throw new StartupError(`cannot write pid file ${pidFile}: it is a directory`);
    }
  } catch (e) {
    if (e instanceof StartupError) throw e;
  }
}

/**
 * Refuses a mount point that holds anything, as the original does (its FUSE
 * mount fails on a non-empty directory); libfuse 3 would mount over it.
 */
function checkMountpointEmpty(path: string): void {
  let first: string | undefined;
  try {
    for (const e of Deno.readDirSync(path)) {
      first = e.name;
      break;
    }
  } catch (e) {
    throw new StartupError(`cannot read mount point ${path}: ${why(e)}`);
  }
  if (first !== undefined) {
    throw new StartupError(
      `mount point ${path} is not empty (it holds '${first}'): refusing to mount over it`,
    );
  }
}

async function acquireLock(path: string, log: ReturnType<Log["domain"]>): Promise<number> {
  for (let i = 0; i <= 10; i++) {
    const r = tryLockFile(path);
    if ("fd" in r) return r.fd;
    if (r.stage === "open") {
      const dir = path.slice(0, path.lastIndexOf("/"));
      throw new StartupError(
        r.errno === EROFS
          ? `data directory ${dir} is read-only: cannot create the lock file ${path}`
          : `cannot open the lock file ${path}: ${strerror(r.errno)}`,
      );
    }
    if (r.errno !== EWOULDBLOCK) {
      throw new StartupError(`cannot lock ${path}: ${strerror(r.errno)}`);
    }
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
  logger.debugOn = cfg.debug;
  const log = logger.domain("main");
  logger.debug("main", () => `configuration ${JSON.stringify(cfg)}`);
  if (!isValidNodeName(cfg.nodename)) {
    log(
      "warn",
      `host name '${cfg.nodename}' is no valid node name: VM configs below ` +
        `nodes/${cfg.nodename} are not recognised (use --nodename)`,
    );
  }
  umask(0o027);
  const gid = wwwDataGid();

  ensureDir(cfg.dataDir, "data directory");
  ensureDir(cfg.runDir, "run directory");
  try {
    Deno.chownSync(cfg.runDir, 0, gid);
  } catch (e) {
    log("warn", `cannot chown ${cfg.runDir}: ${why(e)}`);
  }
  checkPidFileDir(cfg.pidFile, cfg.runDir);

  const lockFd = await acquireLock(`${cfg.dataDir}/.pmxcfs.lockfile`, log);
  void lockFd; // held (and the lock with it) until the process exits

  // We hold the instance lock, so anything mounted here is left over from a killed daemon.
  if (mountedAt(cfg.mount)) {
    const e = lazyUnmount(cfg.mount);
    log(
      e ? "warn" : "notice",
      `cleaned up a stale mount at ${cfg.mount}${e ? ` (errno ${e})` : ""}`,
    );
  }
  ensureDir(cfg.mount, "mount point");
  checkMountpointEmpty(cfg.mount);
  const starttime = now();

  const dbPath = `${cfg.dataDir}/config.db`;
  const isNew = !existsFile(dbPath);
  let db: Database;
  try {
    db = Database.open(dbPath, starttime, logger.domain("database"));
  } catch (e) {
    throw new StartupError(`DB load failed for ${dbPath}: ${(e as Error).message}`);
  }
  logger.debug("database", () => `loaded ${dbPath}: version ${db.memdb.root.version}`);

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
    createNodeDirs(db, cfg.nodename, log);

    const loop = new PollLoop();
    const fs = new PveFs(db.memdb, new LocalCommitter(db, now), {
      nodename: cfg.nodename,
      wwwGid: gid,
      starttime,
      now,
      quorate: () => true,
      debug: {
        get: () => logger.debugOn,
        set: (on) => {
          if (on === logger.debugOn) return;
          logger.debugOn = on;
          log("notice", `debug logging switched ${on ? "on" : "off"}`);
        },
      },
    });
    const fuseLog = {
      get debugging() {
        return logger.debugOn;
      },
      debug: (msg: string) => logger.debug("fuse", msg),
      warn: (msg: string) => logger.write("fuse", "warn", msg),
    };
    const handler = new PveHandler(fs, loop, fuseLog);
    // Every applied change, whatever applied it, reaches the kernel caches.
    db.applied.add((change, origin) => handler.applied(change, origin));

    let session: FuseSession;
    try {
      session = FuseSession.mount(tracedHandler(handler, fuseLog), {
        mountpoint: cfg.mount,
        fsname: "/dev/fuse",
        options: ["default_permissions", "allow_other"],
      });
    } catch (e) {
      throw new StartupError(`cannot mount ${cfg.mount}: ${(e as Error).message}`);
    }
    handler.invalidate = {
      inode: (ino) => session.notifyInvalInode(ino, 0, 0),
      entry: (parent, name) => session.notifyInvalEntry(parent, name),
    };
    const stop = () => {
      logger.debug("main", "signal received: unmounting");
      session.stop();
    };
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];
    for (const s of signals) Deno.addSignalListener(s, stop);

    try {
      if (writePid) {
        try {
          writePidFile(cfg.pidFile, Deno.pid);
        } catch (e) {
          throw new StartupError(`cannot write pid file ${cfg.pidFile}: ${why(e)}`);
        }
      }
      try {
        Deno.removeSync(`${cfg.runDir}/cfs-restart-flag`);
      } catch { /* not there */ }
      log("info", `mounted ${cfg.mount} in local mode (node ${cfg.nodename})`);
      ready(logger);
    } catch (e) {
      // A start that fails leaves no mount behind.
      session.stop();
      await session.closed;
      throw e;
    }

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
  const file = "corosync.conf";
  const r = db.apply({ type: "create", path: file }, s);
  const w = r.errno === 0
    ? db.apply({ type: "write", path: file, offset: 0, data, truncate: true }, s)
    : r;
  if (w.errno !== 0) throw new StartupError(`cannot import ${path}: errno ${w.errno}`);
  log("notice", `imported ${path} into the new database`);
}

/**
 * `nodes/<nodename>` with `qemu-server`, `lxc`, `openvz` and `priv`, as a
 * node's setup makes them (the original leaves that to the Perl side), so
 * `local` and the guest symlinks never dangle. Local mode: through the
 * database, writer 0, the daemon's clock. Nothing is touched when the node
 * directory exists; a failure is reported and the start goes on.
 */
function createNodeDirs(db: Database, nodename: string, log: ReturnType<Log["domain"]>): void {
  const base = `nodes/${nodename}`;
  if (db.memdb.lookup(base)) return;
  const s = { writer: 0, mtime: now() };
  const dirs = [base, `${base}/qemu-server`, `${base}/lxc`, `${base}/openvz`, `${base}/priv`];
  for (const dir of db.memdb.lookup("nodes") ? dirs : ["nodes", ...dirs]) {
    const r = db.apply({ type: "mkdir", path: dir }, s);
    if (r.errno !== 0) {
      log(
        "err",
        `cannot create ${dir} in the database (${errnoName(r.errno)}): ` +
          `the node symlinks (local, qemu-server, lxc, openvz) point nowhere`,
      );
      return;
    }
  }
  log("notice", `created ${base} with qemu-server, lxc, openvz and priv`);
}

/**
 * Background mode (spec 11.3 step 13): the parent starts the same program in
 * the foreground with `--daemon-child`, waits for its "1" on stdout, writes
 * the pid file with the child's pid and exits 0; anything else kills the
 * child and exits 255.
 */
export async function daemonize(cfg: DaemonConfig): Promise<number> {
  checkPidFileDir(cfg.pidFile, cfg.runDir);
  const exe = Deno.execPath();
  const compiled = !/\/deno$/.test(exe);
  const self = new URL("../../main.ts", import.meta.url).pathname;
  // The child gets the parsed options (absolute paths) and `/` as its working directory.
  const argv = childArgv(cfg);
  const args = compiled ? argv : ["run", ...DENO_RUN_FLAGS, self, ...argv];
  const child = new Deno.Command(exe, {
    args,
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
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
  reader.releaseLock();
  try {
    writePidFile(cfg.pidFile, child.pid);
  } catch (e) {
    child.kill("SIGTERM"); // it unmounts and exits
    await child.status;
    throw new StartupError(`cannot write pid file ${cfg.pidFile}: ${why(e)}`);
  }
  child.unref();
  return 0;
}

/**
 * In the background child: choose where the log goes from now on (syslog, or
 * `<run-dir>/pmxcfs.log` when syslog is unreachable, said on stderr while the
 * starter still reads it) and hand it the lines of the start, tell the parent
 * we are ready, leave its session and its descriptors (a supervisor reading
 * our output must see it end).
 */
export function signalReadyToParent(log: Log, runDir: string): void {
  const unreachable = syslogUnreachable();
  if (unreachable === undefined) {
    log.attach(openSyslog());
  } else {
    const path = `${runDir}/pmxcfs.log`;
    log.write(
      "main",
      "notice",
      `syslog is unreachable (${SYSLOG_SOCKET}: ${unreachable}): logging to ${path}`,
    );
    try {
      log.attach(fileSink(path));
    } catch (e) {
      log.write("main", "err", `cannot open ${path}: ${why(e)}: no log from now on`);
      log.attach(() => {});
    }
  }
  Deno.chdir("/");
  Deno.stdout.writeSync(new TextEncoder().encode("1\n"));
  setsid();
  detachStdio(true);
}

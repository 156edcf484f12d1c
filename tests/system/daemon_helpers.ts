/**
 * Starting pmxcfs for system tests: in a private mount namespace, with its
 * data, run and pid paths in a temp dir that outlives restarts. Set
 * PMXCFS_BIN to test a compiled binary instead of `deno run main.ts`.
 */
import { DENO_RUN_FLAGS } from "../../src/daemon/deno_flags.ts";
import { type NsServer, startInMountNamespace } from "./helpers.ts";

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const FSOPS = new URL("./fixtures/fsops.ts", import.meta.url).pathname;

export interface OpResult {
  ok: boolean;
  code?: string;
  // deno-lint-ignore no-explicit-any
  value?: any;
}

export interface Daemon extends NsServer {
  data: string;
  /** Real syscalls inside the namespace; one result per op. */
  ops(list: unknown[][]): Promise<OpResult[]>;
  /** A path below the mount point. */
  p(rel: string): string;
}

/** A data dir for one or more daemon runs; removed on dispose. */
export function dataDir(): { path: string; [Symbol.dispose](): void } {
  const path = Deno.makeTempDirSync({ prefix: "pmxcfs-data-" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** Arguments that keep every path of the daemon inside `data`. */
export function daemonArgs(data: string, mount = "{mountpoint}"): string[] {
  return [
    "--mount",
    mount,
    "--data-dir",
    data,
    "--run-dir",
    `${data}/run`,
    "--pid-file",
    `${data}/pmxcfs.pid`,
    "--nodename",
    "pve1",
    "--corosync-conf",
    `${data}/host-corosync.conf`,
  ];
}

/** The command that runs the daemon: the compiled binary or deno run. */
export function daemonCommand(): string[] {
  const bin = Deno.env.get("PMXCFS_BIN");
  return bin ? [bin] : [Deno.execPath(), "run", ...DENO_RUN_FLAGS, MAIN];
}

export async function startDaemon(
  data: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<Daemon> {
  const [cmd, ...pre] = daemonCommand();
  const srv = await startInMountNamespace({
    command: [cmd, ...pre, "-f", ...daemonArgs(data), ...extra],
    env,
    readyTimeoutMs: 20000,
  });
  const d = srv as Daemon;
  d.data = data;
  d.p = (rel) => rel ? `${srv.mountpoint}/${rel}` : srv.mountpoint;
  d.ops = async (list) => {
    const r = await srv.exec([Deno.execPath(), "run", "--allow-all", FSOPS, JSON.stringify(list)]);
    if (r.code !== 0) throw new Error(`fsops failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  return d;
}

/**
 * Runs `fn` against a daemon on a fresh data dir (extra arguments `extra`); prints the
 * daemon's stderr when `fn` fails; stops the daemon and removes the data dir either way.
 */
export async function withDaemon(fn: (d: Daemon) => Promise<void>, extra: string[] = []) {
  using data = dataDir();
  const d = await startDaemon(data.path, extra);
  try {
    await fn(d);
  } catch (e) {
    console.error(d.stderr());
    throw e;
  } finally {
    await d.stop();
  }
}

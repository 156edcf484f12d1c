/**
 * Daemon settings: the command line of spec 11.1 plus the paths tests and
 * packaging move, parsed into absolute paths and checked before anything starts.
 */
import { isAbsolute, resolve } from "node:path";
import { isValidNodeName } from "../memdb/path.ts";

export interface DaemonConfig {
  foreground: boolean;
  debug: boolean;
  local: boolean;
  /** Absolute paths (relative ones on the command line are resolved at parse time). */
  mount: string;
  dataDir: string;
  runDir: string;
  pidFile: string;
  nodename: string;
  /** Host corosync config, imported into a new database (spec 11.3 step 9). */
  corosyncConf: string;
}

/** The original's paths (spec 11.2). */
export const DEFAULTS = {
  mount: "/etc/pve",
  dataDir: "/var/lib/pve-cluster",
  runDir: "/run/pve-cluster",
  pidFile: "/run/pve-cluster.pid",
  corosyncConf: "/etc/corosync/corosync.conf",
} as const;

/** Start-up failures exit with this status, like the original. */
export const EXIT_STARTUP = 255;

/** Internal: marks the background child started by the parent (spec 11.3 step 13). */
export const DAEMON_CHILD_FLAG = "--daemon-child";

export type CommandLine =
  | { kind: "run"; cfg: DaemonConfig; child: boolean }
  | { kind: "help" }
  | { kind: "version" }
  /** A message for stderr (already prefixed with `pmxcfs: `) and the exit status. */
  | { kind: "error"; code: number; message: string };

type Flag = "foreground" | "debug" | "local" | "help" | "version" | "child";
type Value = "mount" | "dataDir" | "runDir" | "pidFile" | "nodename" | "corosyncConf";

const FLAGS: Record<string, Flag> = {
  "-f": "foreground",
  "--foreground": "foreground",
  "-d": "debug",
  "--debug": "debug",
  "-l": "local",
  "--local": "local",
  "-h": "help",
  "--help": "help",
  "--help-all": "help",
  "--version": "version",
  [DAEMON_CHILD_FLAG]: "child",
};

const VALUES: Record<string, Value> = {
  "--mount": "mount",
  "--data-dir": "dataDir",
  "--run-dir": "runDir",
  "--pid-file": "pidFile",
  "--nodename": "nodename",
  "--corosync-conf": "corosyncConf",
};

const usageError = (message: string): CommandLine => ({
  kind: "error",
  code: 1,
  message: `pmxcfs: ${message} (see pmxcfs --help)`,
});

/**
 * Parses the command line (options as GLib takes them: `-fdl` grouped,
 * `--opt VALUE` or `--opt=VALUE`, `--` ends the options). Unknown options and
 * missing values give exit status 1, positional arguments and a bad node name
 * 255, as the original. Relative paths are made absolute against `cwd`.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: { cwd: string; hostname: () => string } = { cwd: Deno.cwd(), hostname: shortHostname },
): CommandLine {
  const flags = new Set<Flag>();
  const values: Partial<Record<Value, string>> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a : a.slice(0, eq);
      if (Object.hasOwn(FLAGS, name)) {
        if (eq >= 0) return usageError(`option '${name}' takes no value`);
        flags.add(FLAGS[name]);
      } else if (Object.hasOwn(VALUES, name)) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) return usageError(`option '${name}' needs a value`);
        if (v === "" && name !== "--nodename") {
          return { kind: "error", code: EXIT_STARTUP, message: `pmxcfs: empty path for ${name}` };
        }
        values[VALUES[name]] = v;
      } else {
        return usageError(`unknown option '${name}'`);
      }
    } else if (a.startsWith("-") && a.length > 1) {
      for (const c of a.slice(1)) {
        const f = FLAGS[`-${c}`];
        if (f === undefined) return usageError(`unknown option '-${c}'`);
        flags.add(f);
      }
    } else {
      positionals.push(a);
    }
  }
  if (flags.has("help")) return { kind: "help" };
  if (flags.has("version")) return { kind: "version" };
  if (positionals.length > 0) {
    return { kind: "error", code: EXIT_STARTUP, message: "pmxcfs: too many arguments" };
  }

  let nodename = values.nodename;
  if (nodename === undefined) {
    nodename = env.hostname();
    if (nodename === "") {
      return {
        kind: "error",
        code: EXIT_STARTUP,
        message: "pmxcfs: the host name is empty: set one or give --nodename",
      };
    }
  } else if (!isValidNodeName(nodename)) {
    return {
      kind: "error",
      code: EXIT_STARTUP,
      message: nodename === ""
        ? "pmxcfs: invalid node name '': it is empty"
        : `pmxcfs: invalid node name '${nodename}': use ASCII letters, digits and '-' ` +
          `(not first or last)`,
    };
  }

  const abs = (p: string) => isAbsolute(p) ? resolve(p) : resolve(env.cwd, p);
  const runDir = abs(values.runDir ?? DEFAULTS.runDir);
  // The original's pid file belongs to the original's run dir: an instance with a
  // run dir of its own keeps its pid file there and never touches the host's.
  const pidFile = values.pidFile !== undefined
    ? abs(values.pidFile)
    : runDir === DEFAULTS.runDir
    ? DEFAULTS.pidFile
    : `${runDir}/pmxcfs.pid`;
  const child = flags.has("child");
  return {
    kind: "run",
    child,
    cfg: {
      foreground: flags.has("foreground") || child,
      debug: flags.has("debug"),
      local: flags.has("local"),
      mount: abs(values.mount ?? DEFAULTS.mount),
      dataDir: abs(values.dataDir ?? DEFAULTS.dataDir),
      runDir,
      pidFile,
      nodename,
      corosyncConf: abs(values.corosyncConf ?? DEFAULTS.corosyncConf),
    },
  };
}

/** The command line that gives `cfg` back (absolute paths), for the background child. */
export function childArgv(cfg: DaemonConfig): string[] {
  return [
    ...(cfg.debug ? ["-d"] : []),
    ...(cfg.local ? ["-l"] : []),
    "--mount",
    cfg.mount,
    "--data-dir",
    cfg.dataDir,
    "--run-dir",
    cfg.runDir,
    "--pid-file",
    cfg.pidFile,
    "--nodename",
    cfg.nodename,
    "--corosync-conf",
    cfg.corosyncConf,
    DAEMON_CHILD_FLAG,
  ];
}

/** The short host name: the kernel node name up to the first dot. */
export function shortHostname(): string {
  return Deno.hostname().split(".")[0];
}

/** gid of www-data from /etc/group; 33 (Debian's fixed id) when the group is absent. */
export function wwwDataGid(groupFile = "/etc/group"): number {
  try {
    for (const line of Deno.readTextFileSync(groupFile).split("\n")) {
      const f = line.split(":");
      if (f[0] === "www-data" && /^\d+$/.test(f[2] ?? "")) return Number(f[2]);
    }
  } catch {
    // unreadable group file: fall through to the Debian default
  }
  return 33;
}

/**
 * pmxcfs: the Proxmox VE cluster configuration filesystem.
 * Command line of spec 11.1, plus paths that tests and packaging move.
 */
import { parseArgs } from "node:util";
import { type DaemonConfig, shortHostname } from "./src/daemon/config.ts";
import {
  daemonize,
  EXIT_STARTUP,
  runDaemon,
  signalReadyToParent,
  StartupError,
} from "./src/daemon/daemon.ts";

export const VERSION = "0.1.0";

const HELP = `Usage: pmxcfs [OPTION...]

Proxmox VE cluster configuration filesystem (pmxcfs-ts ${VERSION})

  -f, --foreground      do not daemonize; the pid file holds our own pid
  -d, --debug           turn on debug messages
  -l, --local           force local mode (ignore corosync.conf, force quorum)
      --mount DIR       mount point (default /etc/pve)
      --data-dir DIR    state directory with config.db (default /var/lib/pve-cluster)
      --run-dir DIR     runtime directory (default /run/pve-cluster)
      --pid-file FILE   pid file (default /run/pve-cluster.pid)
      --nodename NAME   node name (default: the short host name)
      --corosync-conf F host corosync config imported into a new database
                        (default /etc/corosync/corosync.conf)
  -h, --help            show this help
      --version         show the version
`;

function parse(argv: string[]): { cfg: DaemonConfig; child: boolean } | number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        foreground: { type: "boolean", short: "f" },
        debug: { type: "boolean", short: "d" },
        local: { type: "boolean", short: "l" },
        help: { type: "boolean", short: "h" },
        "help-all": { type: "boolean" },
        version: { type: "boolean" },
        mount: { type: "string" },
        "data-dir": { type: "string" },
        "run-dir": { type: "string" },
        "pid-file": { type: "string" },
        nodename: { type: "string" },
        "corosync-conf": { type: "string" },
        "daemon-child": { type: "boolean" },
      },
    });
  } catch (e) {
    console.error(`pmxcfs: ${(e as Error).message}`);
    return 1;
  }
  const v = parsed.values;
  if (v.help || v["help-all"]) {
    console.log(HELP);
    return 0;
  }
  if (v.version) {
    console.log(`pmxcfs-ts ${VERSION}`);
    return 0;
  }
  if (parsed.positionals.length > 0) {
    console.error("pmxcfs: too many arguments");
    return EXIT_STARTUP;
  }
  return {
    child: v["daemon-child"] ?? false,
    cfg: {
      foreground: (v.foreground ?? false) || (v["daemon-child"] ?? false),
      debug: v.debug ?? false,
      local: v.local ?? false,
      mount: v.mount ?? "/etc/pve",
      dataDir: v["data-dir"] ?? "/var/lib/pve-cluster",
      runDir: v["run-dir"] ?? "/run/pve-cluster",
      pidFile: v["pid-file"] ?? "/run/pve-cluster.pid",
      nodename: v.nodename ?? shortHostname(),
      corosyncConf: v["corosync-conf"] ?? "/etc/corosync/corosync.conf",
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const p = parse(argv);
  if (typeof p === "number") return p;
  const { cfg, child } = p;
  if (!cfg.foreground) return await daemonize(cfg, argv);
  try {
    // A background child writes no pid file of its own: the parent does.
    return await runDaemon(cfg, child ? signalReadyToParent : undefined, !child);
  } catch (e) {
    if (e instanceof StartupError) {
      console.error(`[main] crit: ${e.message}`);
      return EXIT_STARTUP;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

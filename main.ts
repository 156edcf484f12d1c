/**
 * pmxcfs: the Proxmox VE cluster configuration filesystem.
 * Command line of spec 11.1, plus paths that tests and packaging move.
 */
import { EXIT_STARTUP, parseCommandLine } from "./src/daemon/config.ts";
import { daemonize, runDaemon, signalReadyToParent, StartupError } from "./src/daemon/daemon.ts";
import { logger } from "./src/daemon/log.ts";

export const VERSION = "0.1.0";

const HELP = `Usage: pmxcfs [OPTION...]

Proxmox VE cluster configuration filesystem (pmxcfs-ts ${VERSION})

  -f, --foreground      do not daemonize; the pid file holds our own pid
  -d, --debug           turn on debug messages
  -l, --local           force local mode (ignore corosync.conf, force quorum)
      --mount DIR       mount point (default /etc/pve)
      --data-dir DIR    state directory with config.db (default /var/lib/pve-cluster)
      --run-dir DIR     runtime directory (default /run/pve-cluster)
      --pid-file FILE   pid file (default /run/pve-cluster.pid with the default run
                        directory, else RUN-DIR/pmxcfs.pid)
      --nodename NAME   node name (default: the short host name)
      --corosync-conf F host corosync config imported into a new database
                        (default /etc/corosync/corosync.conf)
  -h, --help            show this help
      --version         show the version
`;

export async function main(argv: string[]): Promise<number> {
  const p = parseCommandLine(argv);
  switch (p.kind) {
    case "help":
      console.log(HELP);
      return 0;
    case "version":
      console.log(`pmxcfs-ts ${VERSION}`);
      return 0;
    case "error":
      console.error(p.message);
      return p.code;
  }
  const { cfg, child } = p;
  if (child) logger.holdForSink();
  try {
    if (!cfg.foreground) return await daemonize(cfg);
    // A background child writes no pid file of its own: the parent does.
    return await runDaemon(
      cfg,
      child ? (log) => signalReadyToParent(log, cfg.runDir) : undefined,
      !child,
    );
  } catch (e) {
    // One line, on stderr before the daemon detaches, in its log after.
    const msg = e instanceof StartupError ? e.message : `unexpected error: ${(e as Error).message}`;
    logger.write("main", "crit", msg);
    if (!(e instanceof StartupError)) logger.debug("main", () => String((e as Error).stack));
    return EXIT_STARTUP;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

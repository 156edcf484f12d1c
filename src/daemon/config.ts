/** Daemon settings: the command line of spec 11.1 plus the paths tests need to move. */
export interface DaemonConfig {
  foreground: boolean;
  debug: boolean;
  local: boolean;
  mount: string;
  dataDir: string;
  runDir: string;
  pidFile: string;
  nodename: string;
  /** Host corosync config, imported into a new database (spec 11.3 step 9). */
  corosyncConf: string;
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

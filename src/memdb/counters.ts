/** Change counters of the observed paths (spec 2.9); they feed `.version`. */

/** The observed paths, in `.version` order. */
export const OBSERVED_PATHS = [
  "corosync.conf",
  "corosync.conf.new",
  "storage.cfg",
  "user.cfg",
  "domains.cfg",
  "notifications.cfg",
  "priv/notifications.cfg",
  "priv/shadow.cfg",
  "priv/acme/plugins.cfg",
  "priv/tfa.cfg",
  "priv/token.cfg",
  "priv/wg-keys.cfg",
  "datacenter.cfg",
  "vzdump.cron",
  "vzdump.conf",
  "jobs.cfg",
  "ha/crm_commands",
  "ha/manager_status",
  "ha/resources.cfg",
  "ha/rules.cfg",
  "ha/groups.cfg",
  "ha/fence.cfg",
  "status.cfg",
  "replication.cfg",
  "ceph.conf",
  "sdn/vnets.cfg",
  "sdn/zones.cfg",
  "sdn/controllers.cfg",
  "sdn/subnets.cfg",
  "sdn/ipams.cfg",
  "sdn/mac-cache.json",
  "sdn/pve-ipam-state.json",
  "sdn/dns.cfg",
  "sdn/fabrics.cfg",
  "sdn/route-maps.cfg",
  "sdn/prefix-lists.cfg",
  "sdn/.running-config",
  "virtual-guest/cpu-models.conf",
  "virtual-guest/profiles.cfg",
  "firewall/cluster.fw",
  "mapping/directory.cfg",
  "mapping/pci.cfg",
  "mapping/usb.cfg",
] as const;

export class ChangeCounters {
  private readonly counts = new Map<string, number>(OBSERVED_PATHS.map((p) => [p, 0]));

  /** Counts a change of exactly `path` (relative form); others are ignored. */
  bump(path: string): void {
    const c = this.counts.get(path);
    if (c !== undefined) this.counts.set(path, (c + 1) >>> 0);
  }

  /** A full (re)load changes everything. */
  bumpAll(): void {
    for (const [p, c] of this.counts) this.counts.set(p, (c + 1) >>> 0);
  }

  get(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  /** [path, counter] in `.version` order. */
  entries(): [string, number][] {
    return OBSERVED_PATHS.map((p) => [p, this.counts.get(p)!]);
  }
}

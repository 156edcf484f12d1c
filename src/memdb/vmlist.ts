/**
 * The VM list (spec 5.2): VMID -> (node, guest type, per-VM version). Derived
 * from the tree, never persisted, but it decides EEXIST outcomes, so every
 * node must evolve it identically.
 */
import type { GuestType } from "./path.ts";

export interface VmInfo {
  node: string;
  type: GuestType;
  version: number;
}

export class VmList {
  readonly vms = new Map<number, VmInfo>();
  /** List-wide version, bumped on every change. */
  version = 0;
  private vmCounter = 0;

  /** True when `vmid` is registered to another (node, type) pair. */
  conflicts(vmid: number, node: string, type: GuestType): boolean {
    const vm = this.vms.get(vmid);
    return vm !== undefined && (vm.node !== node || vm.type !== type);
  }

  register(vmid: number, node: string, type: GuestType): void {
    this.vms.set(vmid, { node, type, version: ++this.vmCounter });
    this.version++;
  }

  remove(vmid: number): void {
    this.vms.delete(vmid);
    this.version++;
  }

  /** Installs a freshly rebuilt map (one list-version bump). */
  replace(entries: Iterable<[number, { node: string; type: GuestType }]>): void {
    this.vms.clear();
    for (const [vmid, { node, type }] of entries) {
      this.vms.set(vmid, { node, type, version: ++this.vmCounter });
    }
    this.version++;
  }
}

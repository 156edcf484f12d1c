/** Path helpers for memdb's relative, slash-separated byte-string paths. */

/** Path components, empty ones (leading, trailing, doubled slashes) skipped. */
export function components(path: string): string[] {
  if (path.indexOf("/") < 0) return path === "" ? [] : [path];
  return path.split("/").filter((c) => c !== "");
}

/** The canonical relative form: no leading, trailing or doubled slashes. */
export function normalize(path: string): string {
  return components(path).join("/");
}

/** A basename memdb refuses to create or touch (EACCES). */
export function isBadName(name: string): boolean {
  return name === "" || name === "." || name === "..";
}

/** Node names: ASCII letters, digits and inner dashes. */
export function isValidNodeName(name: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(name);
}

export type GuestType = "qemu" | "lxc" | "openvz";

const guestDirs: Record<string, GuestType> = {
  "qemu-server": "qemu",
  "lxc": "lxc",
  "openvz": "openvz",
};

/** The guest type a `nodes/<node>/<dir>` directory name stands for. */
export function guestTypeOfDir(dir: string): GuestType | undefined {
  return Object.hasOwn(guestDirs, dir) ? guestDirs[dir] : undefined;
}

/** VMID of a VM config basename (`100.conf`), or undefined. */
export function vmidOfName(name: string): number | undefined {
  const m = /^([1-9][0-9]*)\.conf$/.exec(name);
  if (!m) return undefined;
  const id = Number(m[1]);
  return id <= 0xffffffff ? id : undefined;
}

export interface VmConfigPath {
  vmid: number;
  node: string;
  type: GuestType;
}

/** Parses `nodes/<node>/<qemu-server|lxc|openvz>/<vmid>.conf` (relative form only). */
export function parseVmConfigPath(path: string): VmConfigPath | undefined {
  if (!path.startsWith("nodes/")) return undefined;
  const c = path.split("/");
  if (c.length !== 4) return undefined;
  const type = guestTypeOfDir(c[2]);
  if (!type || !isValidNodeName(c[1])) return undefined;
  const vmid = vmidOfName(c[3]);
  return vmid === undefined ? undefined : { vmid, node: c[1], type };
}

/** True when the dirname of `path` is exactly `priv/lock`. */
export function isLockPath(path: string): boolean {
  const c = path.split("/");
  return c.length === 3 && c[0] === "priv" && c[1] === "lock" && c[2] !== "";
}

/** True for paths strictly below `priv/lock/` (any depth), the unlock-request trigger. */
export function isUnderLockDir(path: string): boolean {
  return path.startsWith("priv/lock/") && path.length > "priv/lock/".length;
}

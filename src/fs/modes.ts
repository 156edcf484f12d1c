/** Permission bits presented for memdb entries and synthetic files (spec 8.3). */

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** `priv` and below, `nodes/<x>/priv` and below (exact component `priv`). */
export function isPrivatePath(rel: string): boolean {
  const c = rel.split("/").filter((x) => x !== "");
  return c[0] === "priv" || (c.length >= 3 && c[0] === "nodes" && c[2] === "priv");
}

/** Legacy OpenVZ action scripts keep an owner-execute bit. */
function isOpenvzScript(name: string): boolean {
  return /^(vps|[1-9][0-9]*)\.(mount|umount|start|stop|premount|postumount)$/.test(name);
}

export type Kind = "dir" | "file" | "symlink";

/** Applies the masking rules to `base` for the object at `rel`. */
export function maskMode(kind: Kind, rel: string, base: number): number {
  if (isPrivatePath(rel)) return base & 0o700;
  return kind === "file" ? base & ~0o027 : base & ~0o022;
}

/** Full st_mode (type and permission bits) of a memdb entry. */
export function entryMode(kind: "dir" | "file", rel: string, quorate: boolean): number {
  let base = kind === "dir" ? (quorate ? 0o777 : 0o555) : (quorate ? 0o666 : 0o444);
  if (kind === "file" && isOpenvzScript(rel.slice(rel.lastIndexOf("/") + 1))) base |= 0o100;
  return (kind === "dir" ? S_IFDIR : S_IFREG) | maskMode(kind, rel, base);
}

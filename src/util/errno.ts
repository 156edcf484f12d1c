/** Linux x86-64 errno values that memdb and the FUSE layer report. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  EREMOTEIO: 121,
} as const;

export type Errno = (typeof Errno)[keyof typeof Errno];

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** Symbolic name of an errno value, e.g. `errnoName(2) === "ENOENT"`. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

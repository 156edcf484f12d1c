/**
 * Linux x86-64 errno values: the one place for errno numbers (memdb, the FUSE layer, the
 * poll loop and libc callers all take them from here).
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  EPROTOTYPE: 91,
  EOPNOTSUPP: 95,
  EREMOTEIO: 121,
} as const;

export type Errno = (typeof Errno)[keyof typeof Errno];

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** Symbolic name of an errno value, e.g. `errnoName(2) === "ENOENT"`. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

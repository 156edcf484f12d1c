/** Thin wrappers over the libc calls of ffi/libc.ts (opened once in src/util/libc.ts). */
import {
  LOCK_EX,
  LOCK_NB,
  LOG_DAEMON,
  LOG_PID,
  MNT_DETACH,
  O_CLOEXEC,
  O_CREAT,
  O_RDWR,
} from "../../ffi/libc.ts";
import { utf8CString as cstr } from "../util/bytes.ts";
import { errno, libc } from "../util/libc.ts";

/** Opens (creating, mode 0600) and exclusively flocks `path` without blocking. */
export function tryLockFile(path: string): { fd: number } | { errno: number } {
  const fd = libc().open(cstr(path), O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  if (fd < 0) return { errno: errno() };
  if (libc().flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const e = errno();
    libc().close(fd);
    return { errno: e };
  }
  return { fd };
}

/** Lazy unmount (umount -l); returns 0 or the errno. */
export function lazyUnmount(path: string): number {
  return libc().umount2(cstr(path), MNT_DETACH) === 0 ? 0 : errno();
}

export function setsid(): void {
  libc().setsid();
}

export function umask(mask: number): number {
  return libc().umask(mask);
}

/** Points descriptors 0, 1 (and 2 when asked) at /dev/null. */
export function detachStdio(alsoStderr: boolean): void {
  const fd = libc().open(cstr("/dev/null"), O_RDWR, 0);
  if (fd < 0) return;
  libc().dup2(fd, 0);
  libc().dup2(fd, 1);
  if (alsoStderr) libc().dup2(fd, 2);
  if (fd > 2) libc().close(fd);
}

const ident = cstr("pmxcfs");
const percentS = cstr("%s");

/** Sends log lines to syslog (ident `pmxcfs`, facility daemon) from now on. */
export function openSyslog(): (priority: number, msg: string) => void {
  libc().openlog(ident, LOG_PID, LOG_DAEMON);
  return (priority, msg) => libc().syslog(priority, percentS, cstr(msg));
}

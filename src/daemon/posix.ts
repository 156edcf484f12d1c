/**
 * Thin wrappers over the libc calls the daemon's lifecycle needs and Deno
 * does not offer: a non-blocking flock, lazy unmount, setsid, umask,
 * descriptor redirection, syslog and a connect() probe of its socket.
 *
 * The symbols are those of `ffi/libc.ts`, opened once in `src/util/libc.ts`
 * (a neutral module: the daemon's start-up does not depend on the FUSE layer).
 */
import {
  AF_UNIX,
  LOCK_EX,
  LOCK_NB,
  LOG_DAEMON,
  LOG_PID,
  MNT_DETACH,
  O_CLOEXEC,
  O_CREAT,
  O_RDWR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_STREAM,
} from "../../ffi/libc.ts";
import { utf8CString as cstr } from "../util/bytes.ts";
import { Errno } from "../util/errno.ts";
import { errno, libc } from "../util/libc.ts";

export const EWOULDBLOCK = Errno.EAGAIN;
export const EROFS = Errno.EROFS;
const EPROTOTYPE = Errno.EPROTOTYPE;

/** The C library's text for an errno value ("Read-only file system"). */
export function strerror(e: number): string {
  const p = libc().strerror(e);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${e}`;
}

/**
 * Opens (creating, mode 0600) and exclusively flocks `path` without blocking.
 * `stage` tells whether the open or the flock failed.
 */
export function tryLockFile(
  path: string,
): { fd: number } | { errno: number; stage: "open" | "flock" } {
  const fd = libc().open(cstr(path), O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  if (fd < 0) return { errno: errno(), stage: "open" };
  if (libc().flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const e = errno();
    libc().close(fd);
    return { errno: e, stage: "flock" };
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
  const stdio = alsoStderr ? [0, 1, 2] : [0, 1];
  // Deno keeps duplicates of the standard descriptors for Deno.stdout and friends: a
  // supervisor reading our output (`pmxcfs | tail`) would wait for ever on those too.
  const targets = new Set(stdio.map(fdTarget));
  targets.delete(undefined);
  const copies = openFds().filter((n) => n > 2 && targets.has(fdTarget(n)));
  const fd = libc().open(cstr("/dev/null"), O_RDWR, 0);
  if (fd < 0) return;
  for (const n of [...stdio, ...copies]) libc().dup2(fd, n);
  if (fd > 2) libc().close(fd);
}

/** What descriptor `fd` refers to (`pipe:[1234]`, a path...), or undefined. */
function fdTarget(fd: number): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** The process's open descriptors. */
function openFds(): number[] {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].map((e) => Number(e.name));
  } catch {
    return [];
  }
}

/** The socket glibc's syslog() sends to. */
export const SYSLOG_SOCKET = "/dev/log";

/**
 * Whether syslog can be reached: connects to its socket as glibc does
 * (datagram, then stream). Undefined when it can, else why not
 * ("No such file or directory", "Connection refused" for a stale socket...).
 */
export function syslogUnreachable(path = SYSLOG_SOCKET): string | undefined {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length >= 108) return "socket path too long";
  const addr = new Uint8Array(2 + 108);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  let e = 0;
  for (const type of [SOCK_DGRAM, SOCK_STREAM]) {
    const fd = libc().socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return strerror(errno());
    const r = libc().connect(fd, addr, 2 + bytes.length + 1);
    e = r === 0 ? 0 : errno();
    libc().close(fd);
    if (e !== EPROTOTYPE) break;
  }
  return e === 0 ? undefined : strerror(e);
}

const ident = cstr("pmxcfs");
const percentS = cstr("%s");

/** Sends log lines to syslog (ident `pmxcfs`, facility daemon) from now on. */
export function openSyslog(): (priority: number, msg: string) => void {
  libc().openlog(ident, LOG_PID, LOG_DAEMON);
  return (priority, msg) => libc().syslog(priority, percentS, cstr(msg));
}

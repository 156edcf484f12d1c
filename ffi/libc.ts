/**
 * Raw bindings for the glibc calls the program needs and Deno does not offer: the poll
 * loop's `poll`/`pipe2`/`fcntl`, C strings and buffers handed out by libfuse, the daemon's
 * lifecycle (non-blocking flock, lazy unmount, setsid, umask, descriptor redirection, syslog
 * and a probe of its socket) and `mkfifo` for the system tests. Symbol table, constants under
 * their C names and the one struct layout (`struct pollfd`) only: no logic. The table is
 * opened once, by `src/util/libc.ts`. Errno values live in `src/util/errno.ts`.
 *
 * @example
 * ```ts
 * import { LIBC_LIBRARY, LIBC_SYMBOLS } from "./libc.ts";
 * const libc = Deno.dlopen(LIBC_LIBRARY, LIBC_SYMBOLS).symbols;
 * console.log(libc.umask(0o022));
 * ```
 * @module
 */

/** Shared object name of glibc. */
export const LIBC_LIBRARY = "libc.so.6";

/** glibc symbols (x86_64 Linux). */
export const LIBC_SYMBOLS = {
  /** int open(const char *pathname, int flags, mode_t mode) */
  open: {
    parameters: [
      "buffer", // const char *pathname
      "i32", // int flags
      "u32", // mode_t mode
    ],
    result: "i32",
  },
  /** int close(int fd) */
  close: {
    parameters: [
      "i32", // int fd
    ],
    result: "i32",
  },
  /** ssize_t read(int fd, void *buf, size_t count) */
  read: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) */
  pwrite: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
      "i64", // off_t offset
    ],
    result: "isize",
  },
  /** int fstat(int fd, struct stat *statbuf) (tests: a stat between write and close) */
  fstat: {
    parameters: [
      "i32", // int fd
      "buffer", // struct stat *statbuf
    ],
    result: "i32",
  },
  /** int pipe2(int pipefd[2], int flags) */
  pipe2: {
    parameters: [
      "buffer", // int pipefd[2]
      "i32", // int flags
    ],
    result: "i32",
  },
  /** int fcntl(int fd, int cmd, ... int arg) — called with exactly one int argument */
  fcntl: {
    parameters: [
      "i32", // int fd
      "i32", // int cmd
      "i32", // int arg
    ],
    result: "i32",
  },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout) — off the JS thread */
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds
      "u64", // nfds_t nfds
      "i32", // int timeout (ms; -1 = no timeout)
    ],
    result: "i32",
    nonblocking: true,
  },
  /** size_t strlen(const char *s) */
  strlen: {
    parameters: [
      "pointer", // const char *s
    ],
    result: "usize",
  },
  /** void free(void *ptr) */
  free: {
    parameters: [
      "pointer", // void *ptr
    ],
    result: "void",
  },
  /** int flock(int fd, int operation) */
  flock: {
    parameters: [
      "i32", // int fd
      "i32", // int operation
    ],
    result: "i32",
  },
  /** int umount2(const char *target, int flags) */
  umount2: {
    parameters: [
      "buffer", // const char *target
      "i32", // int flags
    ],
    result: "i32",
  },
  /** int mkfifo(const char *pathname, mode_t mode) */
  mkfifo: {
    parameters: [
      "buffer", // const char *pathname
      "u32", // mode_t mode
    ],
    result: "i32",
  },
  /** int socket(int domain, int type, int protocol) */
  socket: {
    parameters: [
      "i32", // int domain
      "i32", // int type
      "i32", // int protocol
    ],
    result: "i32",
  },
  /** int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen) */
  connect: {
    parameters: [
      "i32", // int sockfd
      "buffer", // const struct sockaddr *addr
      "u32", // socklen_t addrlen
    ],
    result: "i32",
  },
  /** char *strerror(int errnum) */
  strerror: {
    parameters: [
      "i32", // int errnum
    ],
    result: "pointer",
  },
  /** pid_t setsid(void) */
  setsid: { parameters: [], result: "i32" },
  /** mode_t umask(mode_t mask) */
  umask: {
    parameters: [
      "u32", // mode_t mask
    ],
    result: "u32",
  },
  /** int dup2(int oldfd, int newfd) */
  dup2: {
    parameters: [
      "i32", // int oldfd
      "i32", // int newfd
    ],
    result: "i32",
  },
  /** void openlog(const char *ident, int option, int facility) */
  openlog: {
    parameters: [
      "buffer", // const char *ident (must stay alive: syslog keeps the pointer)
      "i32", // int option
      "i32", // int facility
    ],
    result: "void",
  },
  /**
   * void syslog(int priority, const char *format, ...) — always called with format "%s"
   * and one string; passing a pointer to a variadic function is safe on x86-64 SysV.
   */
  syslog: {
    parameters: [
      "i32", // int priority
      "buffer", // const char *format
      "buffer", // const char *arg (the message)
    ],
    result: "void",
  },
  /** int *__errno_location(void) */
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

// open(2) flags
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_TRUNC = 0o1000;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// fcntl(2) commands
export const F_GETFL = 3;
export const F_SETFL = 4;

// poll(2) events
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/** struct pollfd (8 bytes): {int fd @0, short events @4, short revents @6}. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

// flock(2), umount2(2)
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const MNT_DETACH = 2;

// socket(2)
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;

// openlog(3)
export const LOG_PID = 1;
export const LOG_DAEMON = 3 << 3;

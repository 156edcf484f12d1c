/**
 * libc calls the daemon's lifecycle needs and Deno does not offer: a
 * non-blocking flock, lazy unmount, setsid, umask and descriptor redirection.
 * Symbol table only.
 */

export const LIBC_PROCESS_LIBRARY = "libc.so.6";

export const LIBC_PROCESS_SYMBOLS = {
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
  close: { parameters: ["i32" /* int fd */], result: "i32" },
  /** int flock(int fd, int operation) */
  flock: { parameters: ["i32", /* int fd */ "i32" /* int operation */], result: "i32" },
  /** int umount2(const char *target, int flags) */
  umount2: {
    parameters: ["buffer", /* const char *target */ "i32" /* int flags */],
    result: "i32",
  },
  /** pid_t setsid(void) */
  setsid: { parameters: [], result: "i32" },
  /** mode_t umask(mode_t mask) */
  umask: { parameters: ["u32" /* mode_t mask */], result: "u32" },
  /** int dup2(int oldfd, int newfd) */
  dup2: { parameters: ["i32", /* int oldfd */ "i32" /* int newfd */], result: "i32" },
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

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_CLOEXEC = 0o2000000;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const MNT_DETACH = 2;
export const LOG_PID = 1;
export const LOG_DAEMON = 3 << 3;

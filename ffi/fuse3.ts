/**
 * Raw bindings for the libfuse3 low-level API (`libfuse3.so.3`, 3.14). Symbol table, callback
 * signatures and x86_64 struct layouts only: no logic (the libc calls are in `libc.ts`). Every
 * offset below was checked with a compiled C probe against the 3.14 headers
 * (`FUSE_USE_VERSION 314`, glibc, x86_64).
 *
 * @example
 * ```ts
 * import { FUSE3_LIBRARY, FUSE3_SYMBOLS } from "./fuse3.ts";
 * const lib = Deno.dlopen(FUSE3_LIBRARY, FUSE3_SYMBOLS);
 * console.log(lib.symbols.fuse_version()); // 314
 * ```
 * @module
 */

/** Shared object name of libfuse3 (Debian package `libfuse3-3`). */
export const FUSE3_LIBRARY = "libfuse3.so.3";

/** libfuse3 symbols. Opaque `fuse_session *` and `fuse_req_t` are `pointer`s. */
export const FUSE3_SYMBOLS = {
  /** int fuse_version(void) */
  fuse_version: { parameters: [], result: "i32" },
  /** int fuse_opt_add_arg(struct fuse_args *args, const char *arg) */
  fuse_opt_add_arg: {
    parameters: [
      "buffer", // struct fuse_args *args
      "buffer", // const char *arg
    ],
    result: "i32",
  },
  /** void fuse_opt_free_args(struct fuse_args *args) */
  fuse_opt_free_args: {
    parameters: [
      "buffer", // struct fuse_args *args
    ],
    result: "void",
  },
  /** struct fuse_session *fuse_session_new(struct fuse_args *args, const struct fuse_lowlevel_ops *op, size_t op_size, void *userdata) */
  fuse_session_new: {
    parameters: [
      "buffer", // struct fuse_args *args
      "buffer", // const struct fuse_lowlevel_ops *op
      "usize", // size_t op_size
      "pointer", // void *userdata
    ],
    result: "pointer",
  },
  /** int fuse_session_mount(struct fuse_session *se, const char *mountpoint) */
  fuse_session_mount: {
    parameters: [
      "pointer", // struct fuse_session *se
      "buffer", // const char *mountpoint
    ],
    result: "i32",
  },
  /** int fuse_session_fd(struct fuse_session *se) */
  fuse_session_fd: {
    parameters: [
      "pointer", // struct fuse_session *se
    ],
    result: "i32",
  },
  /** int fuse_session_receive_buf(struct fuse_session *se, struct fuse_buf *buf); returns bytes, 0 if exited, -errno */
  fuse_session_receive_buf: {
    parameters: [
      "pointer", // struct fuse_session *se
      "buffer", // struct fuse_buf *buf
    ],
    result: "i32",
  },
  /** void fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf) */
  fuse_session_process_buf: {
    parameters: [
      "pointer", // struct fuse_session *se
      "buffer", // const struct fuse_buf *buf
    ],
    result: "void",
  },
  /** void fuse_session_exit(struct fuse_session *se) */
  fuse_session_exit: {
    parameters: [
      "pointer", // struct fuse_session *se
    ],
    result: "void",
  },
  /** int fuse_session_exited(struct fuse_session *se) */
  fuse_session_exited: {
    parameters: [
      "pointer", // struct fuse_session *se
    ],
    result: "i32",
  },
  /** void fuse_session_unmount(struct fuse_session *se) */
  fuse_session_unmount: {
    parameters: [
      "pointer", // struct fuse_session *se
    ],
    result: "void",
  },
  /** void fuse_session_destroy(struct fuse_session *se) */
  fuse_session_destroy: {
    parameters: [
      "pointer", // struct fuse_session *se
    ],
    result: "void",
  },
  /** const struct fuse_ctx *fuse_req_ctx(fuse_req_t req) */
  fuse_req_ctx: {
    parameters: [
      "pointer", // fuse_req_t req
    ],
    result: "pointer",
  },
  /** int fuse_reply_err(fuse_req_t req, int err) */
  fuse_reply_err: {
    parameters: [
      "pointer", // fuse_req_t req
      "i32", // int err
    ],
    result: "i32",
  },
  /** void fuse_reply_none(fuse_req_t req) */
  fuse_reply_none: {
    parameters: [
      "pointer", // fuse_req_t req
    ],
    result: "void",
  },
  /** int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e) */
  fuse_reply_entry: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const struct fuse_entry_param *e
    ],
    result: "i32",
  },
  /** int fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e, const struct fuse_file_info *fi) */
  fuse_reply_create: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const struct fuse_entry_param *e
      "buffer", // const struct fuse_file_info *fi
    ],
    result: "i32",
  },
  /** int fuse_reply_attr(fuse_req_t req, const struct stat *attr, double attr_timeout) */
  fuse_reply_attr: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const struct stat *attr
      "f64", // double attr_timeout
    ],
    result: "i32",
  },
  /** int fuse_reply_readlink(fuse_req_t req, const char *link) */
  fuse_reply_readlink: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const char *link
    ],
    result: "i32",
  },
  /** int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi) */
  fuse_reply_open: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const struct fuse_file_info *fi
    ],
    result: "i32",
  },
  /** int fuse_reply_write(fuse_req_t req, size_t count) */
  fuse_reply_write: {
    parameters: [
      "pointer", // fuse_req_t req
      "usize", // size_t count
    ],
    result: "i32",
  },
  /** int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size) */
  fuse_reply_buf: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const char *buf
      "usize", // size_t size
    ],
    result: "i32",
  },
  /** int fuse_reply_statfs(fuse_req_t req, const struct statvfs *stbuf) */
  fuse_reply_statfs: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // const struct statvfs *stbuf
    ],
    result: "i32",
  },
  /** size_t fuse_add_direntry(fuse_req_t req, char *buf, size_t bufsize, const char *name, const struct stat *stbuf, off_t off) */
  fuse_add_direntry: {
    parameters: [
      "pointer", // fuse_req_t req
      "buffer", // char *buf
      "usize", // size_t bufsize
      "buffer", // const char *name
      "buffer", // const struct stat *stbuf
      "i64", // off_t off
    ],
    result: "usize",
  },
  /** int fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino, off_t off, off_t len) */
  fuse_lowlevel_notify_inval_inode: {
    parameters: [
      "pointer", // struct fuse_session *se
      "u64", // fuse_ino_t ino
      "i64", // off_t off
      "i64", // off_t len
    ],
    result: "i32",
    // Off the JS thread: the kernel may block this write until a pending request on the
    // same inode/directory is answered, which only the JS thread can do.
    nonblocking: true,
  },
  /** int fuse_lowlevel_notify_inval_entry(struct fuse_session *se, fuse_ino_t parent, const char *name, size_t namelen) */
  fuse_lowlevel_notify_inval_entry: {
    parameters: [
      "pointer", // struct fuse_session *se
      "u64", // fuse_ino_t parent
      "buffer", // const char *name
      "usize", // size_t namelen
    ],
    result: "i32",
    // Off the JS thread: the kernel may block this write until a pending request on the
    // same inode/directory is answered, which only the JS thread can do.
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

// ---------------------------------------------------------------------------------------------
// struct fuse_lowlevel_ops: 44 function pointers (352 bytes) in 3.14; slot index = offset / 8.

/** Number of function pointer slots in `struct fuse_lowlevel_ops` (3.14). */
export const FUSE_LOWLEVEL_OPS_SLOTS = 44;
/** sizeof(struct fuse_lowlevel_ops) */
export const FUSE_LOWLEVEL_OPS_SIZE = 352;
/** Slot index of each op in `struct fuse_lowlevel_ops` (byte offset = index * 8). */
export const OP = {
  init: 0,
  destroy: 1,
  lookup: 2,
  forget: 3,
  getattr: 4,
  setattr: 5,
  readlink: 6,
  mknod: 7,
  mkdir: 8,
  unlink: 9,
  rmdir: 10,
  symlink: 11,
  rename: 12,
  link: 13,
  open: 14,
  read: 15,
  write: 16,
  flush: 17,
  release: 18,
  fsync: 19,
  opendir: 20,
  readdir: 21,
  releasedir: 22,
  fsyncdir: 23,
  statfs: 24,
  setxattr: 25,
  getxattr: 26,
  listxattr: 27,
  removexattr: 28,
  access: 29,
  create: 30,
  getlk: 31,
  setlk: 32,
  bmap: 33,
  ioctl: 34,
  poll: 35,
  write_buf: 36,
  retrieve_reply: 37,
  forget_multi: 38,
  flock: 39,
  fallocate: 40,
  readdirplus: 41,
  copy_file_range: 42,
  lseek: 43,
} as const;

/** Callback signatures for the op slots this project implements. */
export const OP_CALLBACKS = {
  /** void (*init)(void *userdata, struct fuse_conn_info *conn) */
  init: { parameters: ["pointer", "pointer"], result: "void" },
  /** void (*destroy)(void *userdata) */
  destroy: { parameters: ["pointer"], result: "void" },
  /** void (*lookup)(fuse_req_t req, fuse_ino_t parent, const char *name) */
  lookup: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*forget)(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) */
  forget: { parameters: ["pointer", "u64", "u64"], result: "void" },
  /** void (*getattr)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) — fi may be NULL */
  getattr: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*setattr)(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) */
  setattr: { parameters: ["pointer", "u64", "pointer", "i32", "pointer"], result: "void" },
  /** void (*readlink)(fuse_req_t req, fuse_ino_t ino) */
  readlink: { parameters: ["pointer", "u64"], result: "void" },
  /** void (*mknod)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) */
  mknod: { parameters: ["pointer", "u64", "pointer", "u32", "u64"], result: "void" },
  /** void (*mkdir)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) */
  mkdir: { parameters: ["pointer", "u64", "pointer", "u32"], result: "void" },
  /** void (*unlink)(fuse_req_t req, fuse_ino_t parent, const char *name) */
  unlink: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*rmdir)(fuse_req_t req, fuse_ino_t parent, const char *name) */
  rmdir: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*symlink)(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) */
  symlink: { parameters: ["pointer", "pointer", "u64", "pointer"], result: "void" },
  /** void (*rename)(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) */
  rename: {
    parameters: ["pointer", "u64", "pointer", "u64", "pointer", "u32"],
    result: "void",
  },
  /** void (*link)(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) */
  link: { parameters: ["pointer", "u64", "u64", "pointer"], result: "void" },
  /** void (*open)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) */
  open: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*read)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) */
  read: { parameters: ["pointer", "u64", "usize", "i64", "pointer"], result: "void" },
  /** void (*write)(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) */
  write: {
    parameters: ["pointer", "u64", "pointer", "usize", "i64", "pointer"],
    result: "void",
  },
  /** void (*flush)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) */
  flush: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*release)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) */
  release: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*fsync)(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) */
  fsync: { parameters: ["pointer", "u64", "i32", "pointer"], result: "void" },
  /** void (*opendir)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) */
  opendir: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*readdir)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) */
  readdir: { parameters: ["pointer", "u64", "usize", "i64", "pointer"], result: "void" },
  /** void (*releasedir)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) */
  releasedir: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*statfs)(fuse_req_t req, fuse_ino_t ino) */
  statfs: { parameters: ["pointer", "u64"], result: "void" },
  /** void (*create)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) */
  create: { parameters: ["pointer", "u64", "pointer", "u32", "pointer"], result: "void" },
  /** void (*forget_multi)(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) */
  forget_multi: { parameters: ["pointer", "usize", "pointer"], result: "void" },
} as const satisfies Record<string, Deno.UnsafeCallbackDefinition>;

// ---------------------------------------------------------------------------------------------
// Struct layouts (x86_64, glibc). Offsets in bytes; all little-endian.

/** struct stat (144 bytes). Times are struct timespec {i64 tv_sec, i64 tv_nsec}. */
export const STAT = {
  size: 144,
  dev: 0, // u64 st_dev
  ino: 8, // u64 st_ino
  nlink: 16, // u64 st_nlink
  mode: 24, // u32 st_mode
  uid: 28, // u32 st_uid
  gid: 32, // u32 st_gid
  rdev: 40, // u64 st_rdev
  size_: 48, // i64 st_size
  blksize: 56, // i64 st_blksize
  blocks: 64, // i64 st_blocks
  atimSec: 72, // i64 st_atim.tv_sec
  atimNsec: 80, // i64 st_atim.tv_nsec
  mtimSec: 88, // i64 st_mtim.tv_sec
  mtimNsec: 96, // i64 st_mtim.tv_nsec
  ctimSec: 104, // i64 st_ctim.tv_sec
  ctimNsec: 112, // i64 st_ctim.tv_nsec
} as const;

/** struct fuse_entry_param (176 bytes). */
export const ENTRY_PARAM = {
  size: 176,
  ino: 0, // u64 ino
  generation: 8, // u64 generation
  attr: 16, // struct stat attr (144 bytes)
  attrTimeout: 160, // double attr_timeout
  entryTimeout: 168, // double entry_timeout
} as const;

/**
 * struct fuse_file_info (40 bytes). The bitfield word at offset 4 holds, from bit 0:
 * writepage, direct_io, keep_cache, flush, nonseekable, flock_release, cache_readdir, noflush
 * (then 24 padding bits); offset 8 is `padding2`.
 */
export const FILE_INFO = {
  size: 40,
  flags: 0, // i32 flags
  bits: 4, // u32 bitfield word
  fh: 16, // u64 fh
  lockOwner: 24, // u64 lock_owner
  pollEvents: 32, // u32 poll_events
} as const;

/** Bit masks within `FILE_INFO.bits`. */
export const FILE_INFO_BIT = {
  writepage: 1 << 0,
  directIo: 1 << 1,
  keepCache: 1 << 2,
  flush: 1 << 3,
  nonseekable: 1 << 4,
  flockRelease: 1 << 5,
  cacheReaddir: 1 << 6,
  noflush: 1 << 7,
} as const;

/** struct fuse_args (24 bytes). */
export const FUSE_ARGS = {
  size: 24,
  argc: 0, // i32 argc
  argv: 8, // char **argv
  allocated: 16, // i32 allocated
} as const;

/** struct statvfs (112 bytes); all counters unsigned long. */
export const STATVFS = {
  size: 112,
  bsize: 0,
  frsize: 8,
  blocks: 16,
  bfree: 24,
  bavail: 32,
  files: 40,
  ffree: 48,
  favail: 56,
  fsid: 64,
  flag: 72,
  namemax: 80,
} as const;

/** struct fuse_buf (40 bytes). Zero it before the first receive; libfuse mallocs `mem`. */
export const FUSE_BUF = {
  size: 40,
  bufSize: 0, // size_t size
  flags: 8, // enum fuse_buf_flags flags
  mem: 16, // void *mem
  fd: 24, // int fd
  pos: 32, // off_t pos
} as const;

/** struct fuse_ctx (16 bytes). */
export const FUSE_CTX = {
  size: 16,
  uid: 0, // uid_t uid
  gid: 4, // gid_t gid
  pid: 8, // pid_t pid
  umask: 12, // mode_t umask
} as const;

/** struct fuse_forget_data (16 bytes). */
export const FORGET_DATA = {
  size: 16,
  ino: 0, // u64 ino
  nlookup: 8, // u64 nlookup
} as const;

/** struct fuse_conn_info (128 bytes); all fields unsigned int. */
export const CONN_INFO = {
  size: 128,
  protoMajor: 0,
  protoMinor: 4,
  maxWrite: 8,
  maxRead: 12,
  maxReadahead: 16,
  capable: 20,
  want: 24,
  maxBackground: 28,
  congestionThreshold: 32,
  timeGran: 36,
} as const;

/** Capability bits (fuse_conn_info.capable / want) used by this project. */
export const FUSE_CAP = {
  asyncRead: 1 << 0,
  atomicOTrunc: 1 << 3,
  spliceRead: 1 << 9,
  readdirplus: 1 << 13,
  writebackCache: 1 << 16,
} as const;

/** `to_set` flags of setattr. */
export const FUSE_SET_ATTR = {
  mode: 1 << 0,
  uid: 1 << 1,
  gid: 1 << 2,
  size: 1 << 3,
  atime: 1 << 4,
  mtime: 1 << 5,
  atimeNow: 1 << 7,
  mtimeNow: 1 << 8,
  force: 1 << 9,
  ctime: 1 << 10,
} as const;

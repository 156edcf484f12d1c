/**
 * A mounted libfuse3 low-level session: mount a filesystem described by a
 * {@linkcode Handler}, process its requests on the JS thread when the daemon's
 * {@linkcode PollLoop} reports the `/dev/fuse` descriptor readable, notify the kernel of
 * changes, unmount.
 *
 * The session runs no loop of its own: {@linkcode FuseSession.serve} registers the descriptor
 * with a poll loop, whose off-thread `poll` waits for it. Each wake-up then processes requests
 * synchronously on the JS thread ({@linkcode FuseSession.process}), so every handler method runs
 * there. The descriptor is `O_NONBLOCK`, and after a request the session drains: it keeps
 * receiving until `EAGAIN` (spinning up to `drainWaitUs` on the JS thread for the next request,
 * since a client usually sends it within microseconds) before going back to the poll loop,
 * which saves the thread hop per request.
 *
 * The types a handler sees are in `types.ts`, the request and its replies in `request.ts`, the
 * table of libfuse callbacks in `op_table.ts`.
 *
 * @example
 * ```ts
 * import { FuseSession } from "./session.ts";
 * import { PollLoop } from "../daemon/poll_loop.ts";
 * const s = FuseSession.mount({
 *   getattr(req, ino) {
 *     if (ino !== 1) return req.replyErr(2);
 *     req.replyAttr({ ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0,
 *       atime: 0, mtime: 0, ctime: 0 }, 1);
 *   },
 * }, { mountpoint: "/mnt/x", fsname: "demo" });
 * Deno.addSignalListener("SIGTERM", () => s.stop());
 * const loop = new PollLoop();
 * await loop.runUntil(s.serve(loop)); // until stop(), an unmount or a connection abort
 * ```
 * @module
 */
import { FUSE_ARGS, FUSE_BUF } from "../../ffi/fuse3.ts";
import { F_GETFL, F_SETFL, O_NONBLOCK, POLLIN } from "../../ffi/libc.ts";
import type { PollLoop } from "../daemon/poll_loop.ts";
import { latin1Bytes } from "../util/bytes.ts";
import { Errno } from "../util/errno.ts";
import { libc } from "../util/libc.ts";
import { fuse } from "./libfuse.ts";
import { OpTable } from "./op_table.ts";
import { Requests } from "./request.ts";
import type { Handler, MountOptions } from "./types.ts";

/** What {@linkcode FuseSession.process} found: go on, or the session has ended. */
export type ProcessResult = "more" | "ended";

/**
 * A mounted FUSE filesystem. Create with {@linkcode FuseSession.mount}, then
 * {@linkcode FuseSession.serve} it from a {@linkcode PollLoop}.
 */
export class FuseSession {
  /** Requests processed, wake-ups that processed them (for benchmarks). */
  readonly stats = { requests: 0, wakeups: 0 };
  /** Resolves when the session is torn down (unmounted and destroyed). */
  readonly closed: Promise<void>;

  #opts: MountOptions;
  #se: Deno.PointerObject;
  #fd: number;
  #table: OpTable;
  #requests = new Requests();
  #fbuf = new Uint8Array(FUSE_BUF.size);
  #loop: PollLoop | undefined;
  #served: PromiseWithResolvers<void> | undefined;
  #ending = false;
  #stopping = false;
  #torn = false;
  #notifies = new Set<Promise<unknown>>();
  #resolveClosed!: () => void;

  private constructor(handler: Handler, opts: MountOptions) {
    this.#opts = opts;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    const f = fuse();

    try {
      const st = Deno.statSync(opts.mountpoint);
      if (!st.isDirectory) throw new Error("not a directory");
    } catch (e) {
      throw new Error(`FUSE mountpoint ${opts.mountpoint}: ${(e as Error).message}`);
    }

    this.#table = new OpTable(handler, this.#requests, { maxWrite: opts.maxWrite });

    // fuse_args built by libfuse itself (allocated = 1), freed after fuse_session_new.
    const args = new Uint8Array(FUSE_ARGS.size);
    const argv = ["pmxcfs-ts"];
    const o = [...(opts.fsname ? [`fsname=${opts.fsname}`] : []), ...(opts.options ?? [])];
    if (o.length) argv.push("-o", o.join(","));
    if (opts.debug) argv.push("-d");
    for (const a of argv) {
      if (f.fuse_opt_add_arg(args, latin1Bytes(a, true)) !== 0) {
        f.fuse_opt_free_args(args);
        this.#table.close();
        throw new Error("fuse_opt_add_arg: out of memory");
      }
    }
    const ops = this.#table.ops;
    const se = f.fuse_session_new(args, ops, BigInt(ops.byteLength), null);
    f.fuse_opt_free_args(args);
    if (se === null) {
      this.#table.close();
      throw new Error(
        `fuse_session_new failed: bad mount options ${JSON.stringify(argv.slice(1))} ` +
          `(libfuse printed the reason on stderr)`,
      );
    }
    this.#se = se;
    if (f.fuse_session_mount(se, latin1Bytes(opts.mountpoint, true)) !== 0) {
      f.fuse_session_destroy(se);
      this.#table.close();
      throw new Error(
        `fuse_session_mount(${opts.mountpoint}) failed: need root (or fusermount3) and /dev/fuse ` +
          `(libfuse printed the reason on stderr)`,
      );
    }
    this.#fd = f.fuse_session_fd(se);
    const c = libc();
    c.fcntl(this.#fd, F_SETFL, c.fcntl(this.#fd, F_GETFL, 0) | O_NONBLOCK);
  }

  /**
   * Create a session and mount it. Throws an Error with a clear message on failure.
   *
   * @example
   * ```ts
   * const s = FuseSession.mount(handler, { mountpoint: "/etc/pve", fsname: "pmxcfs",
   *   options: ["default_permissions", "allow_other"] });
   * ```
   */
  static mount(handler: Handler, opts: MountOptions): FuseSession {
    return new FuseSession(handler, opts);
  }

  /** The mountpoint given to {@linkcode FuseSession.mount}. */
  get mountpoint(): string {
    return this.#opts.mountpoint;
  }

  /** The `/dev/fuse` descriptor (`O_NONBLOCK`): readable when requests wait. */
  get fd(): number {
    return this.#fd;
  }

  /** Requests handed to a handler and not replied yet (asynchronous replies). */
  get pendingRequests(): number {
    return this.#requests.pending;
  }

  /**
   * Registers the descriptor with `loop`, which then processes requests when they arrive.
   * Resolves once the session has ended (stop(), unmount, connection abort), left the loop
   * and was unmounted and destroyed; rejects on an unexpected device error (torn down too).
   */
  serve(loop: PollLoop): Promise<void> {
    if (this.#served) throw new Error("FuseSession.serve() was called already");
    this.#served = Promise.withResolvers<void>();
    if (this.#torn) {
      this.#served.resolve();
      return this.#served.promise;
    }
    this.#loop = loop;
    loop.add(this.#fd, POLLIN, () => {
      let r: ProcessResult;
      try {
        r = this.process();
      } catch (e) {
        return this.#end(e as Error);
      }
      if (r === "ended") this.#end();
    });
    return this.#served.promise;
  }

  /**
   * Receives and processes the requests that are ready (on the JS thread): until `EAGAIN`
   * (spinning up to `drainWaitUs` for the next one), or `maxBatch` requests, or one request
   * with `drain: false`. Returns "ended" once the session has ended (stop(), unmount,
   * connection abort): the owner then stops polling the descriptor and calls
   * {@linkcode FuseSession.stop} to tear it down ({@linkcode FuseSession.serve} does both).
   * Throws on an unexpected device error.
   */
  process(): ProcessResult {
    if (this.#stopping || this.#torn) return "ended";
    this.stats.wakeups++;
    const f = fuse();
    const se = this.#se;
    const fbuf = this.#fbuf;
    const drain = this.#opts.drain ?? true;
    const waitUs = this.#opts.drainWaitUs ?? 200;
    const max = this.#opts.maxBatch ?? 256;
    let n = 0;
    let spinUntil = 0;
    for (;;) {
      const res = f.fuse_session_receive_buf(se, fbuf);
      if (res === -Errno.EINTR) continue;
      if (res === -Errno.EAGAIN) {
        if (waitUs > 0 && n > 0 && n < max) {
          // Spin briefly: a client usually sends its next request within microseconds,
          // and catching it here saves a sleep/wake-up on both sides.
          if (spinUntil === 0) spinUntil = performance.now() + waitUs / 1000;
          if (performance.now() < spinUntil) continue;
        }
        break;
      }
      spinUntil = 0;
      if (res === 0) return "ended"; // exited (ENODEV = unmounted is turned into exit by libfuse)
      if (res < 0) throw new Error(`fuse_session_receive_buf: errno ${-res}`);
      f.fuse_session_process_buf(se, fbuf);
      this.stats.requests++;
      n++;
      if (this.#stopping) return "ended";
      if (!drain || n >= max) break;
    }
    return f.fuse_session_exited(se) ? "ended" : "more";
  }

  /**
   * Ends the session: no request is processed from now on, pending ones get EIO, and the
   * session leaves its poll loop (if served), unmounts and is destroyed (see `closed`).
   * Safe to call more than once.
   */
  stop(): void {
    if (this.#torn) return;
    if (!this.#stopping) {
      this.#stopping = true;
      fuse().fuse_session_exit(this.#se);
    }
    if (this.#loop) this.#end();
    else void this.#teardown();
  }

  /**
   * fuse_lowlevel_notify_inval_inode, run off the JS thread (the kernel may hold it until a
   * pending request on that inode is answered). Resolves to 0 or -errno; -ENOENT (inode not
   * cached) counts as 0. `off` 0 and `len` 0 invalidate attributes and all cached data;
   * `off` -1 only the attributes.
   */
  notifyInvalInode(ino: number, off: number, len: number): Promise<number> {
    if (this.#torn || this.#stopping) return Promise.resolve(-Errno.ENODEV);
    const p = fuse().fuse_lowlevel_notify_inval_inode(
      this.#se,
      BigInt(ino),
      BigInt(off),
      BigInt(len),
    ).then((r) => (r === -Errno.ENOENT ? 0 : r));
    return this.#track(p);
  }

  /** fuse_lowlevel_notify_inval_entry (off the JS thread, see notifyInvalInode). */
  notifyInvalEntry(parent: number, name: string): Promise<number> {
    if (this.#torn || this.#stopping) return Promise.resolve(-Errno.ENODEV);
    const b = latin1Bytes(name, true);
    const p = fuse().fuse_lowlevel_notify_inval_entry(
      this.#se,
      BigInt(parent),
      b,
      BigInt(b.length - 1),
    ).then((r) => (r === -Errno.ENOENT ? 0 : r));
    return this.#track(p);
  }

  #track(p: Promise<number>): Promise<number> {
    this.#notifies.add(p);
    p.finally(() => this.#notifies.delete(p));
    return p;
  }

  /** Leaves the poll loop, then tears down and settles serve()'s promise. Once. */
  #end(error?: Error): void {
    if (this.#ending) return;
    this.#ending = true;
    if (!this.#stopping) {
      this.#stopping = true;
      fuse().fuse_session_exit(this.#se);
    }
    const served = this.#served!;
    // The descriptor is closed by the unmount: no poll may still watch it by then.
    this.#loop!.remove(this.#fd)
      .then(() => this.#teardown())
      .then(() => error ? served.reject(error) : served.resolve(), served.reject);
  }

  async #teardown(): Promise<void> {
    if (this.#torn) return;
    this.#torn = true;
    const f = fuse();
    // Answer what is still pending so no process stays blocked and no reply touches freed memory.
    this.#requests.cancelAll();
    if (this.#notifies.size) await Promise.allSettled([...this.#notifies]);
    f.fuse_session_unmount(this.#se);
    f.fuse_session_destroy(this.#se);
    const mem = new DataView(this.#fbuf.buffer).getBigUint64(FUSE_BUF.mem, true);
    if (mem !== 0n) libc().free(Deno.UnsafePointer.create(mem));
    this.#fbuf.fill(0);
    this.#table.close();
    this.#resolveClosed();
  }
}

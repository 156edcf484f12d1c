/**
 * The op table: a `struct fuse_lowlevel_ops` whose slots are `Deno.UnsafeCallback`s that turn
 * libfuse calls (on the JS thread, from `fuse_session_process_buf`) into {@linkcode Handler}
 * calls with a {@linkcode Req}. Only the methods the handler has are installed; the others
 * stay NULL (libfuse's default answer, mostly ENOSYS).
 *
 * @example
 * ```ts
 * import { OpTable } from "./op_table.ts";
 * import { Requests } from "./request.ts";
 * const table = new OpTable(handler, new Requests(), { maxWrite: 131072 });
 * // fuse_session_new(args, table.ops, BigInt(table.ops.byteLength), null) ...
 * table.close(); // after fuse_session_destroy
 * ```
 * @module
 */
import {
  CONN_INFO,
  FILE_INFO,
  FORGET_DATA,
  FUSE_CAP,
  FUSE_LOWLEVEL_OPS_SIZE,
  FUSE_SET_ATTR,
  OP,
  OP_CALLBACKS,
  STAT,
} from "../../ffi/fuse3.ts";
import { getI64, getU64 } from "../util/bytes.ts";
import { cStringAt as str } from "../util/libc.ts";
import { fuse } from "./libfuse.ts";
import type { Req, Requests } from "./request.ts";
import type { Handler, SetAttrIn } from "./types.ts";

type Cb = Deno.UnsafeCallback<Deno.UnsafeCallbackDefinition>;

/** Options of the op table. */
export interface OpTableOptions {
  /** `conn->max_write` is lowered to this at init (default 131072). */
  maxWrite?: number;
}

function fiView(p: Deno.PointerValue): DataView | undefined {
  return p === null
    ? undefined
    : new DataView(Deno.UnsafePointerView.getArrayBuffer(p, FILE_INFO.size));
}

function fhOf(p: Deno.PointerValue): number {
  const v = fiView(p);
  return v ? getU64(v, FILE_INFO.fh) : 0;
}

/** A `struct fuse_lowlevel_ops` for `handler`; keep it alive until the session is destroyed. */
export class OpTable {
  /** The struct to pass to `fuse_session_new` (`FUSE_LOWLEVEL_OPS_SIZE` bytes). */
  readonly ops: Uint8Array<ArrayBuffer> = new Uint8Array(FUSE_LOWLEVEL_OPS_SIZE);
  #callbacks: Cb[] = [];

  constructor(handler: Handler, requests: Requests, opts: OpTableOptions = {}) {
    this.#install(handler, requests, opts.maxWrite ?? 131072);
  }

  /** Frees the callbacks; call only after `fuse_session_destroy` (or when it was never created). */
  close(): void {
    for (const cb of this.#callbacks) cb.close();
    this.#callbacks = [];
  }

  #install(h: Handler, requests: Requests, maxWrite: number): void {
    const ops = new DataView(this.ops.buffer);
    const put = <K extends keyof typeof OP_CALLBACKS>(
      name: K,
      fn: Deno.UnsafeCallbackFunction<typeof OP_CALLBACKS[K]["parameters"], "void">,
    ) => {
      const cb = new Deno.UnsafeCallback(OP_CALLBACKS[name], fn) as unknown as Cb;
      this.#callbacks.push(cb);
      ops.setBigUint64(OP[name] * 8, BigInt(Deno.UnsafePointer.value(cb.pointer)), true);
    };
    const req = (p: Deno.PointerValue, fi?: Deno.PointerValue) => requests.create(p, fi);
    const dispatch = (r: Req, f: () => void) => requests.dispatch(r, f);

    put("init", (_ud, conn) => {
      if (conn === null) return;
      const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(conn, CONN_INFO.size));
      const want = dv.getUint32(CONN_INFO.want, true) & ~FUSE_CAP.writebackCache;
      dv.setUint32(CONN_INFO.want, want >>> 0, true);
      if (dv.getUint32(CONN_INFO.maxWrite, true) > maxWrite) {
        dv.setUint32(CONN_INFO.maxWrite, maxWrite, true);
      }
    });
    if (h.lookup) {
      put("lookup", (p, parent, name) => {
        const r = req(p);
        dispatch(r, () => h.lookup!(r, Number(parent), str(name)));
      });
    }
    if (h.forget) {
      const f = fuse();
      put("forget", (p, ino, n) => {
        try {
          h.forget!(Number(ino), Number(n));
        } catch (e) {
          console.error("FUSE forget handler error:", e);
        }
        f.fuse_reply_none(p);
      });
      put("forget_multi", (p, count, forgets) => {
        const c = Number(count);
        if (c > 0 && forgets !== null) {
          const dv = new DataView(
            Deno.UnsafePointerView.getArrayBuffer(forgets, c * FORGET_DATA.size),
          );
          for (let i = 0; i < c; i++) {
            const o = i * FORGET_DATA.size;
            try {
              h.forget!(
                getU64(dv, o + FORGET_DATA.ino),
                getU64(dv, o + FORGET_DATA.nlookup),
              );
            } catch (e) {
              console.error("FUSE forget handler error:", e);
            }
          }
        }
        f.fuse_reply_none(p);
      });
    }
    if (h.getattr) {
      put("getattr", (p, ino, fi) => {
        const r = req(p);
        dispatch(r, () => h.getattr!(r, Number(ino), fi === null ? undefined : fhOf(fi)));
      });
    }
    if (h.setattr) {
      put("setattr", (p, ino, attr, toSet, fi) => {
        const r = req(p);
        dispatch(r, () => {
          const set: SetAttrIn = {};
          if (attr !== null) {
            const v = new DataView(Deno.UnsafePointerView.getArrayBuffer(attr, STAT.size));
            const n = (o: number) => getI64(v, o);
            if (toSet & FUSE_SET_ATTR.mode) set.mode = v.getUint32(STAT.mode, true);
            if (toSet & FUSE_SET_ATTR.uid) set.uid = v.getUint32(STAT.uid, true);
            if (toSet & FUSE_SET_ATTR.gid) set.gid = v.getUint32(STAT.gid, true);
            if (toSet & FUSE_SET_ATTR.size) set.size = n(STAT.size_);
            if (toSet & FUSE_SET_ATTR.atimeNow) set.atimeNow = true;
            else if (toSet & FUSE_SET_ATTR.atime) {
              set.atime = n(STAT.atimSec);
              set.atimeNs = n(STAT.atimNsec);
            }
            if (toSet & FUSE_SET_ATTR.mtimeNow) set.mtimeNow = true;
            else if (toSet & FUSE_SET_ATTR.mtime) {
              set.mtime = n(STAT.mtimSec);
              set.mtimeNs = n(STAT.mtimNsec);
            }
            if (toSet & FUSE_SET_ATTR.ctime) set.ctime = n(STAT.ctimSec);
          }
          h.setattr!(r, Number(ino), set, fi === null ? undefined : fhOf(fi));
        });
      });
    }
    if (h.readlink) {
      put("readlink", (p, ino) => {
        const r = req(p);
        dispatch(r, () => h.readlink!(r, Number(ino)));
      });
    }
    if (h.mknod) {
      put("mknod", (p, parent, name, mode, rdev) => {
        const r = req(p);
        dispatch(r, () => h.mknod!(r, Number(parent), str(name), mode, Number(rdev)));
      });
    }
    if (h.mkdir) {
      put("mkdir", (p, parent, name, mode) => {
        const r = req(p);
        dispatch(r, () => h.mkdir!(r, Number(parent), str(name), mode));
      });
    }
    if (h.unlink) {
      put("unlink", (p, parent, name) => {
        const r = req(p);
        dispatch(r, () => h.unlink!(r, Number(parent), str(name)));
      });
    }
    if (h.rmdir) {
      put("rmdir", (p, parent, name) => {
        const r = req(p);
        dispatch(r, () => h.rmdir!(r, Number(parent), str(name)));
      });
    }
    if (h.symlink) {
      put("symlink", (p, link, parent, name) => {
        const r = req(p);
        dispatch(r, () => h.symlink!(r, str(link), Number(parent), str(name)));
      });
    }
    if (h.rename) {
      put("rename", (p, parent, name, np, nn, flags) => {
        const r = req(p);
        dispatch(
          r,
          () => h.rename!(r, Number(parent), str(name), Number(np), str(nn), flags),
        );
      });
    }
    if (h.link) {
      put("link", (p, ino, np, nn) => {
        const r = req(p);
        dispatch(r, () => h.link!(r, Number(ino), Number(np), str(nn)));
      });
    }
    if (h.open) {
      put("open", (p, ino, fi) => {
        const r = req(p, fi);
        dispatch(r, () => h.open!(r, Number(ino), fiView(fi)?.getInt32(0, true) ?? 0));
      });
    }
    if (h.read) {
      put("read", (p, ino, size, off, fi) => {
        const r = req(p);
        dispatch(r, () => h.read!(r, Number(ino), Number(size), Number(off), fhOf(fi)));
      });
    }
    if (h.write) {
      put("write", (p, ino, buf, size, off, fi) => {
        const r = req(p);
        dispatch(r, () => {
          const n = Number(size);
          const data = n === 0 || buf === null
            ? new Uint8Array(0)
            : new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(buf, n)).slice();
          h.write!(r, Number(ino), data, Number(off), fhOf(fi));
        });
      });
    }
    if (h.flush) {
      put("flush", (p, ino, fi) => {
        const r = req(p);
        dispatch(r, () => h.flush!(r, Number(ino), fhOf(fi)));
      });
    }
    if (h.release) {
      put("release", (p, ino, fi) => {
        const r = req(p);
        const flags = fiView(fi)?.getInt32(FILE_INFO.flags, true) ?? 0;
        dispatch(r, () => h.release!(r, Number(ino), fhOf(fi), flags));
      });
    }
    if (h.fsync) {
      put("fsync", (p, ino, datasync, fi) => {
        const r = req(p);
        dispatch(r, () => h.fsync!(r, Number(ino), datasync !== 0, fhOf(fi)));
      });
    }
    if (h.opendir) {
      put("opendir", (p, ino, fi) => {
        const r = req(p, fi);
        dispatch(
          r,
          () => h.opendir!(r, Number(ino), fiView(fi)?.getInt32(FILE_INFO.flags, true) ?? 0),
        );
      });
    }
    if (h.readdir) {
      put("readdir", (p, ino, size, off, fi) => {
        const r = req(p);
        dispatch(
          r,
          () => h.readdir!(r, Number(ino), Number(size), Number(off), fhOf(fi)),
        );
      });
    }
    if (h.releasedir) {
      put("releasedir", (p, ino, fi) => {
        const r = req(p);
        dispatch(r, () => h.releasedir!(r, Number(ino), fhOf(fi)));
      });
    }
    if (h.statfs) {
      put("statfs", (p, ino) => {
        const r = req(p);
        dispatch(r, () => h.statfs!(r, Number(ino)));
      });
    }
    if (h.create) {
      put("create", (p, parent, name, mode, fi) => {
        const r = req(p, fi);
        const flags = fiView(fi)?.getInt32(FILE_INFO.flags, true) ?? 0;
        dispatch(r, () => h.create!(r, Number(parent), str(name), mode, flags));
      });
    }
  }
}

/**
 * The FUSE handler without a kernel: a fake request that records its reply,
 * timers fired by hand, and a handler over a real database in a temp dir.
 */
import type { Attr, DirEntryOut, EntryOut, OpenOut, Request } from "../../src/fuse/types.ts";
import { PveHandler } from "../../src/fuse/pve_handler.ts";
import type { Timer } from "../../src/fuse/page_cache.ts";
import { PveFs } from "../../src/fs/pve_fs.ts";
import { LocalCommitter } from "../../src/daemon/local_committer.ts";
import { freshDb } from "./helpers.ts";

/** What a request was answered with. */
export type Reply =
  | { kind: "err"; errno: number }
  | { kind: "entry"; entry: EntryOut }
  | { kind: "attr"; attr: Attr; timeout: number }
  | { kind: "open"; open: OpenOut }
  | { kind: "create"; entry: EntryOut; open: OpenOut }
  | { kind: "write"; count: number }
  | { kind: "buf"; data: Uint8Array }
  | { kind: "readlink"; target: string }
  | { kind: "statfs" }
  | { kind: "dir"; names: string[] };

/** A request that keeps its one reply; `reply` is undefined until answered. */
export class FakeReq implements Request {
  reply?: Reply;
  uid = 0;
  gid = 0;
  pid = 1;
  umask = 0o022;
  private set(r: Reply): void {
    if (this.reply) throw new Error("replied twice");
    this.reply = r;
  }
  replyErr(errno: number): void {
    this.set({ kind: "err", errno });
  }
  replyEntry(entry: EntryOut): void {
    this.set({ kind: "entry", entry });
  }
  replyAttr(attr: Attr, timeout: number): void {
    this.set({ kind: "attr", attr, timeout });
  }
  replyOpen(open: OpenOut): void {
    this.set({ kind: "open", open });
  }
  replyCreate(entry: EntryOut, open: OpenOut): void {
    this.set({ kind: "create", entry, open });
  }
  replyWrite(count: number): void {
    this.set({ kind: "write", count });
  }
  replyBuf(data: Uint8Array): void {
    this.set({ kind: "buf", data: data.slice() });
  }
  replyReadlink(target: string): void {
    this.set({ kind: "readlink", target });
  }
  replyStatfs(): void {
    this.set({ kind: "statfs" });
  }
  replyDir(entries: DirEntryOut[], offset: number): void {
    this.set({ kind: "dir", names: entries.slice(offset).map((e) => e.name) });
  }
}

/** Timers on a clock that moves only when the test says so. */
export class FakeTimers {
  private due = new Map<object, { at: number; fn: () => void }>();
  private clock = 0;
  now(): number {
    return this.clock;
  }
  timer(ms: number, fn: () => void): Timer {
    const key = {};
    this.due.set(key, { at: this.clock + ms, fn });
    return {
      rearm: (again = ms) => void this.due.set(key, { at: this.clock + again, fn }),
      cancel: () => void this.due.delete(key),
    };
  }
  get count(): number {
    return this.due.size;
  }
  /** Moves the clock `ms` on and runs the timers that are due, earliest first. */
  advance(ms: number): void {
    this.clock += ms;
    for (;;) {
      const next = [...this.due].filter(([, t]) => t.at <= this.clock)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (!next) return;
      this.due.delete(next[0]);
      next[1].fn();
    }
  }
  /** Runs every timer (an hour passes). */
  fire(): void {
    this.advance(3_600_000);
  }
}

/** A handler over a fresh database, with a settable clock and quorum. */
export function fakeMount() {
  const h = freshDb(1000);
  const timers = new FakeTimers();
  const state = { now: 1000, quorate: true, debug: false };
  const warnings: string[] = [];
  const invalidated: number[] = [];
  const fs = new PveFs(h.db.memdb, new LocalCommitter(h.db, () => state.now), {
    nodename: "pve1",
    wwwGid: 33,
    starttime: 1000,
    now: () => state.now,
    quorate: () => state.quorate,
    debug: { get: () => state.debug, set: (on) => void (state.debug = on) },
  });
  const handler = new PveHandler(fs, timers, {
    debugging: false,
    debug() {},
    warn: (m) => void warnings.push(m),
  });
  handler.invalidate = {
    inode: (ino) => {
      invalidated.push(ino);
      return Promise.resolve();
    },
    entry: () => Promise.resolve(),
  };
  h.db.applied.add((c, o) => handler.applied(c, o));
  /** Calls `f` with a fresh request and returns its reply (it must come at once). */
  const call = (f: (r: FakeReq) => void): Reply => {
    const r = new FakeReq();
    f(r);
    if (!r.reply) throw new Error("no reply");
    return r.reply;
  };
  return { h, fs, handler, timers, state, warnings, invalidated, call };
}

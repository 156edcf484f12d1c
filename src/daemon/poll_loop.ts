/**
 * The daemon's one poll loop: it owns descriptors and timers. Descriptors register with
 * {@linkcode PollLoop.add} and get `onReady(revents)` on the JS thread when `poll` reports
 * them; timers are deadlines in the same loop. The wait itself is a libc `poll` declared
 * `nonblocking` (it runs off the JS thread, so promises and other JS work go on meanwhile)
 * with the timeout of the nearest deadline, plus a wake pipe so that {@linkcode PollLoop.stop},
 * a new or removed descriptor, or an earlier timer takes effect at once.
 *
 * One round: poll; call `onReady` of the ready descriptors (in registration order); then run
 * the timers that are due (in deadline order, ties in arming order). A timer armed by a
 * callback runs in a later round, never in the round that armed it.
 *
 * @example
 * ```ts
 * import { POLLIN } from "../../ffi/libc.ts";
 * import { PollLoop } from "./poll_loop.ts";
 * const loop = new PollLoop();
 * loop.add(fd, POLLIN, (revents) => console.log("readable", revents));
 * const quiet = loop.timer(1000, () => console.log("a quiet second"));
 * quiet.rearm(); // e.g. at each write: cheap
 * loop.timer(5000, () => loop.stop());
 * await loop.run();
 * ```
 * @module
 */
import { O_CLOEXEC, O_NONBLOCK, POLLFD, POLLIN } from "../../ffi/libc.ts";
import { errno, libc } from "../util/libc.ts";

/** Called on the JS thread with the `revents` that `poll` reported (POLLIN, POLLHUP...). */
export type OnReady = (revents: number) => void;

/** A timer of a {@linkcode PollLoop}. */
export interface Timer {
  /** True while it will fire (armed, not fired or cancelled yet). */
  readonly armed: boolean;
  /**
   * Fire `ms` from now instead (default: the delay it was created with); also re-arms a fired
   * or cancelled timer. Cheap (no allocation) when the new deadline is not earlier than the
   * one it is queued for, as when a quiet-time timer is pushed back at each event.
   */
  rearm(ms?: number): void;
  /** Do not fire (until re-armed). */
  cancel(): void;
}

interface Watch {
  fd: number;
  events: number;
  onReady: OnReady;
}

/** A queued deadline of a timer; stale when `timer.entry` is another one. */
interface Entry {
  at: number;
  seq: number;
  timer: LoopTimer;
}

class LoopTimer implements Timer {
  deadline = 0;
  armed = false;
  /** The timer's live queue entry (its `at` is at most `deadline` while armed). */
  entry: Entry | undefined;

  constructor(
    readonly ms: number,
    readonly fn: () => void,
    readonly queue: (t: LoopTimer) => void,
  ) {}

  rearm(ms: number = this.ms): void {
    this.deadline = performance.now() + ms;
    this.armed = true;
    this.queue(this);
  }

  cancel(): void {
    this.armed = false;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** See the module documentation. */
export class PollLoop {
  #watches = new Map<number, Watch>();
  /** The watches in poll order: `#polled[i]` is pollfd `i + 1` (0 is the wake pipe). */
  #polled: Watch[] = [];
  #pollBuf = new Uint8Array(POLLFD.size * 8);
  #dirty = true;
  #heap: Entry[] = [];
  #seq = 0;
  #pipe = new Int32Array([-1, -1]);
  #wakeByte = new Uint8Array([1]);
  #drainBuf = new Uint8Array(64);
  #running = false;
  #stopping = false;
  #polling = false;
  /** When the poll in flight times out by itself (ms, performance.now() clock). */
  #pollDeadline = Infinity;
  #woken = false;
  #afterPoll: (() => void)[] = [];

  /**
   * Watches `fd` for `events` (POLLIN...): `onReady(revents)` runs on the JS thread after each
   * poll that reports it (POLLERR, POLLHUP and POLLNVAL are reported without being asked).
   * Throws if `fd` is watched already. An exception thrown by `onReady` ends
   * {@linkcode PollLoop.run} with that error.
   */
  add(fd: number, events: number, onReady: OnReady): void {
    if (this.#watches.has(fd)) throw new Error(`PollLoop: fd ${fd} is watched already`);
    this.#watches.set(fd, { fd, events, onReady });
    this.#dirty = true;
    this.#wake();
  }

  /**
   * Stops watching `fd` (no `onReady` from now on). The promise resolves once no poll in
   * flight watches it any more: wait for it before closing `fd`, so that the number cannot
   * be reused under a poll still running.
   */
  remove(fd: number): Promise<void> {
    if (!this.#watches.delete(fd)) return Promise.resolve();
    this.#dirty = true;
    if (!this.#polling) return Promise.resolve();
    this.#wake();
    return new Promise((resolve) => this.#afterPoll.push(resolve));
  }

  /** The loop's clock in milliseconds (monotonic; the one timer deadlines use). */
  now(): number {
    return performance.now();
  }

  /** A timer that runs `fn` once, `ms` milliseconds from now, on the JS thread. */
  timer(ms: number, fn: () => void): Timer {
    const t = new LoopTimer(ms, fn, (t) => this.#queue(t));
    t.rearm();
    return t;
  }

  /** Makes the current (or next) {@linkcode PollLoop.run} return after the round in progress. */
  stop(): void {
    this.#stopping = true;
    this.#wake();
  }

  /**
   * Runs rounds until {@linkcode PollLoop.stop}. Rejects with the error of a callback that
   * threw (the loop stops there); descriptors and timers stay registered either way.
   */
  async run(): Promise<void> {
    if (this.#running) throw new Error("PollLoop.run() is running already");
    this.#running = true;
    const c = libc();
    try {
      if (c.pipe2(this.#pipe, O_NONBLOCK | O_CLOEXEC) !== 0) {
        throw new Error(`PollLoop: pipe2 failed (errno ${errno()})`);
      }
      this.#dirty = true;
      while (!this.#stopping) {
        if (this.#dirty) this.#rebuild();
        const timeout = this.#timeout();
        this.#pollDeadline = timeout < 0 ? Infinity : performance.now() + timeout;
        this.#polling = true;
        let r: number;
        try {
          r = await c.poll(this.#pollBuf, BigInt(this.#polled.length + 1), timeout);
        } finally {
          this.#polling = false;
          this.#releaseAfterPoll();
        }
        if (this.#stopping) break;
        if (r > 0) this.#dispatch();
        this.#runTimers();
      }
    } finally {
      for (const fd of this.#pipe) if (fd >= 0) c.close(fd);
      this.#pipe[0] = this.#pipe[1] = -1;
      this.#woken = false;
      this.#running = false;
      this.#stopping = false;
    }
  }

  /**
   * Runs the loop until `work` settles, then stops it and returns (or throws) what `work`
   * gave. Throws if the loop was stopped before `work` settled.
   *
   * @example
   * ```ts
   * const loop = new PollLoop();
   * await loop.runUntil(session.serve(loop)); // until the FUSE session has ended
   * ```
   */
  async runUntil<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const stop = () => {
      settled = true;
      this.stop();
    };
    work.then(stop, stop);
    await this.run();
    if (!settled) throw new Error("PollLoop stopped before the awaited work ended");
    return await work;
  }

  #wake(): void {
    if (!this.#polling || this.#woken || this.#pipe[1] < 0) return;
    this.#woken = true;
    libc().write(this.#pipe[1], this.#wakeByte, 1n);
  }

  #releaseAfterPoll(): void {
    if (this.#afterPoll.length === 0) return;
    const waiters = this.#afterPoll;
    this.#afterPoll = [];
    for (const w of waiters) w();
  }

  #rebuild(): void {
    this.#polled = [...this.#watches.values()];
    const size = (this.#polled.length + 1) * POLLFD.size;
    if (this.#pollBuf.byteLength < size) this.#pollBuf = new Uint8Array(size * 2);
    const dv = new DataView(this.#pollBuf.buffer);
    const put = (i: number, fd: number, events: number) => {
      dv.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
      dv.setInt16(i * POLLFD.size + POLLFD.events, events, true);
      dv.setInt16(i * POLLFD.size + POLLFD.revents, 0, true);
    };
    put(0, this.#pipe[0], POLLIN);
    this.#polled.forEach((w, i) => put(i + 1, w.fd, w.events));
    this.#dirty = false;
  }

  #dispatch(): void {
    const dv = new DataView(this.#pollBuf.buffer);
    if (dv.getInt16(POLLFD.revents, true) !== 0) {
      const c = libc();
      while (Number(c.read(this.#pipe[0], this.#drainBuf, 64n)) === 64) { /* drain */ }
      this.#woken = false;
    }
    const polled = this.#polled;
    for (let i = 0; i < polled.length && !this.#stopping; i++) {
      const revents = dv.getUint16((i + 1) * POLLFD.size + POLLFD.revents, true);
      if (revents === 0) continue;
      const w = polled[i];
      // Removed (or replaced) by an earlier callback of this round: not ours to call.
      if (this.#watches.get(w.fd) !== w) continue;
      w.onReady(revents);
    }
  }

  /** Milliseconds until the nearest deadline, 0 if one is due, -1 without timers. */
  #timeout(): number {
    this.#settleTop();
    const top = this.#heap[0];
    if (!top) return -1;
    const ms = Math.ceil(top.at - performance.now());
    return ms > 0 ? Math.min(ms, 0x7fffffff) : 0;
  }

  #runTimers(): void {
    const now = performance.now();
    const due: LoopTimer[] = [];
    for (;;) {
      this.#settleTop();
      const top = this.#heap[0];
      if (!top || top.at > now) break;
      this.#pop();
      top.timer.entry = undefined;
      due.push(top.timer);
    }
    for (const t of due) {
      // Cancelled, or re-armed (queued again), by an earlier timer of this round.
      if (!t.armed || t.entry) continue;
      t.armed = false;
      t.fn();
      if (this.#stopping) break;
    }
  }

  /**
   * Queues `t` for its deadline, unless its live entry comes no later: that one is moved to
   * the new deadline when it reaches the top (see #settleTop).
   */
  #queue(t: LoopTimer): void {
    const live = t.entry;
    if (live && live.at <= t.deadline) return;
    const e: Entry = { at: t.deadline, seq: ++this.#seq, timer: t };
    t.entry = e; // a previous entry, later than this one, is stale from now on
    this.#push(e);
    if (t.deadline < this.#pollDeadline) this.#wake();
  }

  /** Drops stale and cancelled entries at the top; moves pushed-back timers to their deadline. */
  #settleTop(): void {
    const heap = this.#heap;
    while (heap.length) {
      const top = heap[0];
      const t = top.timer;
      if (t.entry !== top) {
        this.#pop();
      } else if (!t.armed) {
        this.#pop();
        t.entry = undefined;
      } else if (t.deadline > top.at) {
        this.#pop();
        top.at = t.deadline;
        top.seq = ++this.#seq;
        this.#push(top);
      } else {
        return;
      }
    }
  }

  #push(e: Entry): void {
    const heap = this.#heap;
    let i = heap.push(e) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, heap[p])) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = e;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const c = r < heap.length && before(heap[r], heap[l]) ? r : l;
      if (!before(heap[c], last)) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
  }
}

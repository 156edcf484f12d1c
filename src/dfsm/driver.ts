/**
 * The group driver (cluster spec 2.4, 2.6, 4.4, 4.13, 10.3-10.4), still without I/O: it wraps
 * one {@linkcode Dfsm} core and executes its effects through a small {@linkcode Transport} that
 * the adapter supplies (the simulator's CPG handle now, the libcpg adapter later).
 *
 * - **Outbox**: every `mcast` effect goes into one FIFO, handed to the transport in order.
 *   A TRY_AGAIN answer leaves that message and everything behind it queued (later events do not
 *   retry it early); the adapter calls {@linkcode GroupDriver.flush} again after its retry delay (100 ms, spec 2.6;
 *   {@linkcode GroupDriver.flush} returns `"retry"`). After `maxAttempts` TRY_AGAINs (100) or at
 *   the first other failure the message is dropped and `sendFailed{seq}` goes back into the
 *   core (which applies the consequence of 4.13); accepted messages are acknowledged with
 *   `sent{seq}` once the outbox is empty.
 * - **Holding deliveries** (10.4): while the outbox holds messages produced by an incoming event
 *   (confchg, delivery, timer: what C sends from the worker thread and blocks on), further
 *   confchgs and deliveries of the group are kept in arrival order and fed to the core only once
 *   those messages are handed over. Messages of application sends (`send`, a FUSE thread in C)
 *   do not hold deliveries back.
 * - `leaveGroup` and `serviceDown` effects are queued behind the mcasts before them and passed
 *   to the transport in that order. Re-initialisation (≥ 6 s after the previous one, spec 2.4)
 *   is the adapter's job; {@linkcode GroupDriver.lastInitialised} and
 *   {@linkcode GroupDriver.nextInitAt} give it what it needs.
 * - Waiting senders: {@linkcode GroupDriver.send} takes an `onOutcome` callback; the core's
 *   `complete` effect with the driver-made ticket calls it exactly once.
 * - `log` effects go to the log sink at once.
 *
 * @example
 * ```ts
 * import { Dfsm } from "./dfsm.ts";
 * import { GroupDriver } from "./driver.ts";
 * import { CS } from "./types.ts";
 * declare const app: import("./types.ts").DfsmApp;
 * const core = new Dfsm({ groupName: "pve_dcdb_v1", protocolVersion: 1, domain: "dcdb" }, app);
 * const driver = new GroupDriver(core, {
 *   mcast: (_bytes) => CS.OK, // cpg_mcast_joined
 *   leave: () => {}, // cpg_leave
 *   serviceDown: (_restartable) => {}, // schedule the re-initialisation
 * }, { now: () => Date.now() / 1000 });
 * driver.initialise(1, 4242); // then cpg_join
 * driver.send(2, new Uint8Array(8), (outcome) => console.log(outcome), -16);
 * ```
 * @module
 */
import type { Dfsm } from "./dfsm.ts";
import {
  CS,
  type DfsmEffect,
  type DfsmEvent,
  type LogLevel,
  type MemberId,
  type SendOutcome,
} from "./types.ts";

/** What the adapter does for the driver (one CPG handle of one group). */
export interface Transport {
  /** `cpg_mcast_joined(CPG_TYPE_AGREED)`; returns the `cs_error_t` (CS.OK = 1, TRY_AGAIN = 6...). */
  mcast(bytes: Uint8Array): number;
  /** `cpg_leave` (the core entered an error mode while joined). */
  leave(): void;
  /** The service is down: re-initialise (≥ 6 s after the last initialisation) if restartable. */
  serviceDown(restartable: boolean): void;
}

/** Options of a {@linkcode GroupDriver}. */
export interface GroupDriverOptions {
  /** Wall clock in seconds (header times, epochs): the `now` of every event. */
  now(): number;
  /** Receives the core's log lines. */
  log?(domain: string, level: LogLevel, text: string): void;
  /** TRY_AGAIN answers after which a message counts as failed (spec 2.6: 100). */
  maxAttempts?: number;
}

/** What {@linkcode GroupDriver.flush} left: nothing, or messages waiting for a retry. */
export type FlushResult = "idle" | "retry";

type OutItem =
  | { kind: "mcast"; seq: number; bytes: Uint8Array; attempts: number; holds: boolean }
  | { kind: "leave" }
  | { kind: "serviceDown"; restartable: boolean };

type Incoming = Extract<DfsmEvent, { type: "confchg" | "delivered" }>;

/** Executes the effects of one {@linkcode Dfsm} through a {@linkcode Transport}. */
export class GroupDriver {
  readonly core: Dfsm;
  #transport: Transport;
  #opts: GroupDriverOptions;
  #outbox: OutItem[] = [];
  #held: Incoming[] = [];
  #callbacks = new Map<number, (o: SendOutcome) => void>();
  #nextTicket = 1;
  #lastSent = 0;
  #lastInit: number | undefined;
  #draining = false;
  #flushing = false;
  /** The head got TRY_AGAIN: only the adapter's next `flush()` (its retry timer) tries again. */
  #backoff = false;

  constructor(core: Dfsm, transport: Transport, opts: GroupDriverOptions) {
    this.core = core;
    this.#transport = transport;
    this.#opts = opts;
  }

  /** Wall-clock time (s) of the last {@linkcode GroupDriver.initialise}, if any. */
  get lastInitialised(): number | undefined {
    return this.#lastInit;
  }

  /**
   * Earliest wall-clock second at which the next initialisation may run (spec 2.4: the start
   * job runs when `now − last ≥ 6` in whole seconds); `now` when there was none.
   */
  nextInitAt(now: number): number {
    if (this.#lastInit === undefined) return now;
    return Math.max(now, Math.floor(this.#lastInit) + 6);
  }

  /** Items waiting in the outbox (mcasts, leave, service down). */
  get outboxLength(): number {
    return this.#outbox.length;
  }

  /** Incoming events held back behind the outbox (10.4). */
  get heldLength(): number {
    return this.#held.length;
  }

  /** Nothing to send, nothing held. */
  get idle(): boolean {
    return this.#outbox.length === 0 && this.#held.length === 0;
  }

  /** Senders still waiting for their outcome. */
  get waiting(): number {
    return this.#callbacks.size;
  }

  /**
   * DFSM initialise (4.12): call before `cpg_join` (the core counts itself joined). What is
   * still in the outbox belongs to the previous membership: it is dropped as failed
   * (CS_ERR_NOT_EXIST) first. Records the time for {@linkcode GroupDriver.nextInitAt}.
   */
  initialise(nodeid: number, pid: number): void {
    this.#lastInit = this.#opts.now();
    this.#failOutbox(CS.ERR_NOT_EXIST);
    this.#held = [];
    this.#step({ type: "initialised", now: this.#opts.now(), nodeid, pid }, true);
    this.#pump();
  }

  /**
   * The corosync connection is lost or shut down (4.12). What the outbox still holds fails
   * with CS_ERR_LIBRARY first (as C's blocked sends return it), held events are dropped.
   */
  finalise(): void {
    this.#failOutbox(CS.ERR_LIBRARY);
    this.#held = [];
    this.#step({ type: "finalise", now: this.#opts.now() }, true);
    this.#pump();
  }

  /** A confchg of the group (held back while the outbox holds messages of an event). */
  confchg(members: MemberId[], left: MemberId[], joined: MemberId[]): void {
    this.#incoming({ type: "confchg", now: 0, members, left, joined });
  }

  /** A delivered message of the group (held back like confchgs). */
  deliver(from: MemberId, bytes: Uint8Array): void {
    this.#incoming({ type: "delivered", now: 0, from, bytes });
  }

  /** The verification timer (4.11). */
  timer(): void {
    this.#step({ type: "timer", now: this.#opts.now() }, true);
    this.#pump();
  }

  /**
   * An application send (4.4). With `onOutcome` the sender waits: it is called exactly once,
   * possibly before `send` returns (the send failed at once). Returns the ticket (0 without
   * `onOutcome`). `preset` is the result slot's initial value (dcdb: -EBUSY).
   */
  send(
    subtype: number,
    payload: Uint8Array,
    onOutcome?: (o: SendOutcome) => void,
    preset?: number,
  ): number {
    let ticket = 0;
    if (onOutcome) {
      ticket = this.#nextTicket++;
      this.#callbacks.set(ticket, onOutcome);
    }
    this.#step(
      {
        type: "send",
        now: this.#opts.now(),
        subtype,
        payload,
        ticket: onOutcome ? ticket : undefined,
        preset,
      },
      false,
    );
    this.#pump();
    return ticket;
  }

  /**
   * Hands the outbox to the transport in order. Returns "retry" when a TRY_AGAIN left messages
   * queued (call again after 100 ms), "idle" when the outbox is empty. Held incoming events
   * are fed to the core once no message of an event is left.
   */
  flush(): FlushResult {
    this.#backoff = false;
    return this.#pump();
  }

  /** Hands over what can go now (nothing while the head waits for its retry). */
  #pump(): FlushResult {
    if (this.#backoff) return "retry";
    if (this.#flushing) return this.#outbox.length ? "retry" : "idle";
    this.#flushing = true;
    try {
      for (;;) {
        const r = this.#flushOutbox();
        if (r === "retry") return "retry";
        if (this.#held.length === 0 || this.#draining) return "idle";
        // feed held events while nothing blocks them
        this.#draining = true;
        try {
          while (this.#held.length && !this.#blocking()) {
            const ev = this.#held.shift()!;
            this.#step({ ...ev, now: this.#opts.now() }, true);
          }
        } finally {
          this.#draining = false;
        }
        if (this.#outbox.length === 0) return "idle";
      }
    } finally {
      this.#flushing = false;
    }
  }

  #flushOutbox(): FlushResult {
    while (this.#outbox.length) {
      const it = this.#outbox[0];
      if (it.kind === "leave") {
        this.#outbox.shift();
        this.#transport.leave();
        continue;
      }
      if (it.kind === "serviceDown") {
        this.#outbox.shift();
        this.#transport.serviceDown(it.restartable);
        continue;
      }
      const rc = this.#transport.mcast(it.bytes);
      if (rc === CS.OK) {
        this.#outbox.shift();
        this.#lastSent = it.seq;
        continue;
      }
      if (rc === CS.ERR_TRY_AGAIN) {
        it.attempts++;
        const max = this.#opts.maxAttempts ?? 100;
        if (it.attempts < max) {
          if (it.attempts % 10 === 0) {
            this.#log("notice", `cpg_send_message retry ${it.attempts}`);
          }
          this.#backoff = true;
          return "retry";
        }
        this.#log("notice", `cpg_send_message retried ${it.attempts} times`);
      }
      this.#outbox.shift();
      this.#step({ type: "sendFailed", now: this.#opts.now(), seq: it.seq, error: rc }, true);
    }
    if (this.#lastSent > 0) {
      const seq = this.#lastSent;
      this.#lastSent = 0;
      this.#step({ type: "sent", now: this.#opts.now(), seq }, true);
    }
    return "idle";
  }

  /** True while an outbox message produced by an incoming event waits. */
  #blocking(): boolean {
    return this.#outbox.some((it) => it.kind !== "mcast" || it.holds);
  }

  #incoming(ev: Incoming): void {
    if (this.#held.length || this.#blocking()) {
      this.#held.push(ev);
      return;
    }
    this.#step({ ...ev, now: this.#opts.now() }, true);
    this.#pump();
  }

  #failOutbox(error: number): void {
    const items = this.#outbox;
    this.#outbox = [];
    this.#backoff = false;
    for (const it of items) {
      if (it.kind === "mcast") {
        this.#step({ type: "sendFailed", now: this.#opts.now(), seq: it.seq, error }, true);
      }
    }
    // effects of those steps (a LEAVE's leaveGroup) are moot: the handle is gone or renewed
    this.#outbox = this.#outbox.filter((it) => it.kind === "serviceDown");
  }

  #log(level: LogLevel, text: string): void {
    this.#opts.log?.(this.core.config.domain, level, text);
  }

  #step(ev: DfsmEvent, holds: boolean): void {
    for (const e of this.core.step(ev) as DfsmEffect[]) this.#effect(e, holds);
  }

  #effect(e: DfsmEffect, holds: boolean): void {
    switch (e.type) {
      case "mcast":
        this.#outbox.push({ kind: "mcast", seq: e.seq, bytes: e.bytes, attempts: 0, holds });
        break;
      case "complete": {
        const cb = this.#callbacks.get(e.ticket);
        this.#callbacks.delete(e.ticket);
        cb?.(e.outcome);
        break;
      }
      case "leaveGroup":
        this.#outbox.push({ kind: "leave" });
        break;
      case "serviceDown":
        this.#outbox.push({ kind: "serviceDown", restartable: e.restartable });
        break;
      case "log":
        this.#opts.log?.(e.domain, e.level, e.text);
        break;
    }
  }
}

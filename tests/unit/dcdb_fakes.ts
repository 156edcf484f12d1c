/** A recording DFSM context and a hand-driven bus for dcdb tests. */
import type { Dfsm } from "../../src/dfsm/dfsm.ts";
import type {
  DfsmContext,
  DfsmEffect,
  DfsmEvent,
  LogLevel,
  MemberId,
} from "../../src/dfsm/types.ts";

export interface FakeCtx extends DfsmContext {
  now: number;
  logs: string[];
  normals: { subtype: number; payload: Uint8Array }[];
  updates: Uint8Array[];
  completes: number;
}

/** A context at time `now` that records every log line and multicast. */
export function fakeCtx(now = 1795561423): FakeCtx {
  const ctx: FakeCtx = {
    now,
    logs: [],
    normals: [],
    updates: [],
    completes: 0,
    mcastNormal(subtype, payload) {
      ctx.normals.push({ subtype, payload });
    },
    mcastUpdate(payload) {
      ctx.updates.push(payload);
    },
    mcastUpdateComplete() {
      ctx.completes++;
    },
    log(level: LogLevel, text: string) {
      ctx.logs.push(`${level}: ${text}`);
    },
  };
  return ctx;
}

/** A member of a {@linkcode HandBus}: its id and its core. */
export interface BusMember {
  id: MemberId;
  core: Dfsm;
}

/**
 * A hand-driven bus: total order, self delivery, confchgs at a position of
 * the stream. Subclasses see every step's effects in `effects`.
 */
export class HandBus<N extends BusMember> {
  members: N[] = [];
  queue: ({ from: N; bytes: Uint8Array } | { join: N })[] = [];

  constructor(public now: number) {}

  /** Feeds `ev` to `n`'s core and queues its multicasts; returns the effects. */
  step(n: N, ev: DfsmEvent): DfsmEffect[] {
    const eff = n.core.step(ev);
    for (const e of eff) if (e.type === "mcast") this.queue.push({ from: n, bytes: e.bytes });
    this.effects(n, eff);
    return eff;
  }

  /** Hook for the effects of each step (default: nothing). */
  protected effects(_n: N, _eff: DfsmEffect[]): void {}

  join(n: N): void {
    this.queue.push({ join: n });
  }

  /** Processes one queued item; false when the queue is empty. */
  deliverOne(): boolean {
    const it = this.queue.shift();
    if (!it) return false;
    if ("join" in it) {
      this.members.push(it.join);
      const members = this.members.map((m) => ({ ...m.id }));
      for (const m of [...this.members]) {
        this.step(m, { type: "confchg", now: this.now, members, left: [], joined: [it.join.id] });
      }
    } else if (this.members.includes(it.from)) {
      for (const m of [...this.members]) {
        this.step(m, {
          type: "delivered",
          now: this.now,
          from: { ...it.from.id },
          bytes: it.bytes,
        });
      }
    }
    return true;
  }

  run(): void {
    for (let i = 0; i < 10000; i++) if (!this.deliverOne()) return;
    throw new Error("bus did not settle");
  }
}

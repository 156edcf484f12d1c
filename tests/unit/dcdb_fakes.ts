/** A recording DFSM context for dcdb tests. */
import type { DfsmContext, LogLevel } from "../../src/dfsm/types.ts";

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

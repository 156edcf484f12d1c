/**
 * Debug lines for every FUSE request: wraps a handler so that each call is
 * logged (operation and arguments, not data) while debug logging is on. Off,
 * it costs one flag check per request.
 */
import type { Handler } from "./types.ts";

/** Where trace lines go; `debugging` is read at every request (`.debug` can flip it). */
export interface TraceLog {
  readonly debugging: boolean;
  debug(msg: string): void;
}

function show(a: unknown): string {
  if (a instanceof Uint8Array) return `<${a.length} bytes>`;
  if (typeof a === "object" && a !== null) return JSON.stringify(a);
  return String(a);
}

/** A handler that logs each request, then calls `h`; only `h`'s operations are present. */
export function tracedHandler(h: Handler, log: TraceLog): Handler {
  const out: Record<string, unknown> = {};
  let proto: object | null = h;
  const seen = new Set<string>();
  // The handler's methods live on its class (and its prototypes), not on the object.
  while (proto && proto !== Object.prototype) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const f = (h as Record<string, unknown>)[name];
      if (seen.has(name) || name === "constructor" || typeof f !== "function") continue;
      seen.add(name);
      out[name] = (...args: unknown[]) => {
        // args[0] is the request (none for forget).
        if (log.debugging) {
          log.debug(`${name} ${args.slice(name === "forget" ? 0 : 1).map(show).join(" ")}`);
        }
        return f.apply(h, args);
      };
    }
    proto = Object.getPrototypeOf(proto);
  }
  return out as Handler;
}

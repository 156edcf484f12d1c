/** Minimal assertions (the standard library lives on JSR, which is not reachable). */
import { deepStrictEqual, ok } from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  deepStrictEqual(actual, expected, msg);
}

export function assert(cond: unknown, msg?: string): asserts cond {
  ok(cond, msg);
}

export function assertThrows(fn: () => unknown, match?: RegExp): Error {
  try {
    fn();
  } catch (e) {
    if (match && !match.test(String((e as Error).message))) {
      throw new Error(`error ${JSON.stringify((e as Error).message)} does not match ${match}`);
    }
    return e as Error;
  }
  throw new Error("expected an exception");
}

/**
 * glibc, opened once for the whole program (the symbol table is `ffi/libc.ts`).
 *
 * @example
 * ```ts
 * import { errno, libc } from "./libc.ts";
 * if (libc().setsid() < 0) console.error(`setsid: errno ${errno()}`);
 * ```
 * @module
 */
import { LIBC_LIBRARY, LIBC_SYMBOLS } from "../../ffi/libc.ts";
import { latin1StringAt } from "./bytes.ts";

/** The bound glibc symbols. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let symbols: Libc | undefined;

/** The glibc symbols, opened at the first call. */
export function libc(): Libc {
  symbols ??= Deno.dlopen(LIBC_LIBRARY, LIBC_SYMBOLS).symbols;
  return symbols;
}

/**
 * The JS thread's `errno`: read it right after the failed call (a `nonblocking` call runs on
 * another thread, whose errno this does not see).
 */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** Byte string of the NUL-terminated C string at `p` (empty for NULL). */
export function cStringAt(p: Deno.PointerValue): string {
  return p === null ? "" : latin1StringAt(p, Number(libc().strlen(p)));
}

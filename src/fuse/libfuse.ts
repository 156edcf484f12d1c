/**
 * libfuse3, opened once (the symbol table is `ffi/fuse3.ts`).
 *
 * @example
 * ```ts
 * import { fuse } from "./libfuse.ts";
 * console.log(fuse().fuse_version()); // 314
 * ```
 * @module
 */
import { FUSE3_LIBRARY, FUSE3_SYMBOLS } from "../../ffi/fuse3.ts";

/** The bound libfuse3 symbols. */
export type Fuse = Deno.DynamicLibrary<typeof FUSE3_SYMBOLS>["symbols"];

let symbols: Fuse | undefined;

/** The libfuse3 symbols, opened at the first call; throws a clear Error when it is missing. */
export function fuse(): Fuse {
  if (!symbols) {
    try {
      symbols = Deno.dlopen(FUSE3_LIBRARY, FUSE3_SYMBOLS).symbols;
    } catch (e) {
      throw new Error(
        `cannot load ${FUSE3_LIBRARY} (apt-get install libfuse3-3): ${(e as Error).message}`,
      );
    }
  }
  return symbols;
}

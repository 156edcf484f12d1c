/**
 * Byte helpers shared across the tree: byte strings (one char per byte, "latin1": how names
 * and link targets travel between the kernel, memdb and config.db), NUL-terminated C strings,
 * and 64-bit little-endian integers as JS numbers (exact up to 2^53). No I/O and no FFI
 * import: any layer may use it. (Reading a C string behind a pointer needs `strlen`: that is
 * `cStringAt` in `libc.ts`, built on {@linkcode latin1StringAt}.)
 *
 * @example
 * ```ts
 * import { getU64, latin1Bytes, latin1String, setU64 } from "./bytes.ts";
 * latin1String(latin1Bytes("caf\xe9")) === "caf\xe9"; // true, 4 bytes
 * const dv = new DataView(new ArrayBuffer(8));
 * setU64(dv, 0, 2 ** 40 + 5);
 * getU64(dv, 0) === 2 ** 40 + 5; // true
 * ```
 * @module
 */

/** Bytes of a byte string, optionally NUL-terminated. Throws on chars above 0xff. */
export function latin1Bytes(s: string, nul = false): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length + (nul ? 1 : 0));
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`not a byte string (char ${c} at ${i})`);
    out[i] = c;
  }
  return out;
}

/** Byte string (one char per byte) of `bytes`. */
export function latin1String(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return s;
}

/** Byte string of the `length` bytes at C pointer `p` (empty for NULL or 0). */
export function latin1StringAt(p: Deno.PointerValue, length: number): string {
  if (p === null || length === 0) return "";
  return latin1String(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, length)));
}

/** UTF-8 bytes of `s` followed by a NUL: a C string argument (paths, messages). */
export function utf8CString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

const TWO32 = 0x1_0000_0000;

/** Writes unsigned 64-bit `v` (an integer, 0 <= v < 2^53) little-endian at `at`. */
export function setU64(dv: DataView, at: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  dv.setUint32(at, v - hi * TWO32, true);
  dv.setUint32(at + 4, hi, true);
}

/** Writes signed 64-bit `v` (an integer, |v| < 2^53) little-endian at `at`. */
export function setI64(dv: DataView, at: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  dv.setUint32(at, v - hi * TWO32, true);
  dv.setInt32(at + 4, hi, true);
}

/** Reads an unsigned 64-bit little-endian integer at `at` (exact below 2^53). */
export function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;
}

/** Reads a signed 64-bit little-endian integer at `at` (exact for |v| < 2^53). */
export function getI64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getInt32(at + 4, true) * TWO32;
}

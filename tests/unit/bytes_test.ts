/** src/util/bytes.ts: byte strings, C strings, 64-bit little-endian integers. */
import {
  getI64,
  getU64,
  latin1Bytes,
  latin1String,
  latin1StringAt,
  setI64,
  setU64,
  utf8CString,
} from "../../src/util/bytes.ts";
import { cStringAt } from "../../src/util/libc.ts";
import { assertEquals, assertThrows } from "./assert.ts";

Deno.test("bytes: a byte string round-trips through its bytes, NUL on request", () => {
  const s = "caf\xe9\x00\xff";
  assertEquals([...latin1Bytes(s)], [0x63, 0x61, 0x66, 0xe9, 0, 0xff]);
  assertEquals([...latin1Bytes("ab", true)], [0x61, 0x62, 0]);
  assertEquals(latin1String(latin1Bytes(s)), s);
  const big = new Uint8Array(20000).map((_, i) => i & 0xff);
  assertEquals(latin1Bytes(latin1String(big)), big);
});

Deno.test("bytes: a char above 0xff is not a byte string", () => {
  assertThrows(() => latin1Bytes("\u20ac"), /not a byte string/);
});

Deno.test("bytes: C strings: UTF-8 out, byte string in", () => {
  assertEquals([...utf8CString("\xe9")], [0xc3, 0xa9, 0]);
  const buf = latin1Bytes("name\xe9\0tail", false);
  const p = Deno.UnsafePointer.of(buf);
  assertEquals(cStringAt(p), "name\xe9");
  assertEquals(latin1StringAt(p, 2), "na");
  assertEquals(cStringAt(null), "");
});

Deno.test("bytes: 64-bit little-endian integers as numbers", () => {
  const dv = new DataView(new ArrayBuffer(8));
  for (const v of [0, 1, 0xffffffff, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
    setU64(dv, 0, v);
    assertEquals(dv.getBigUint64(0, true), BigInt(v));
    assertEquals(getU64(dv, 0), v);
  }
  for (const v of [0, -1, -(2 ** 32), -(2 ** 40) - 5, 2 ** 40 + 5, Number.MIN_SAFE_INTEGER]) {
    setI64(dv, 0, v);
    assertEquals(dv.getBigInt64(0, true), BigInt(v));
    assertEquals(getI64(dv, 0), v);
  }
});

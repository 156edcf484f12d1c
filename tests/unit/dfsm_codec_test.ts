/** DFSM framing (cluster spec 3) against the C capture: decode, re-encode byte for byte. */
import { assert, assertEquals } from "./assert.ts";
import { allCaptureLines, readCapture } from "./dfsm_fixtures.ts";
import {
  decodeMessage,
  decodeVerifyPayload,
  decodeVerifyRequestPayload,
  type DfsmMessage,
  encodeMessage,
  encodeNormal,
  encodeState,
  encodeVerifyPayload,
  encodeVerifyRequestPayload,
  formatEpoch,
  groupNameBytes,
  isNormal,
  MSG_TYPE_NAMES,
  MsgType,
  type StateMessage,
} from "../../src/dfsm/codec.ts";

const VERSION = { dcdb: 1, kvstore: 0 } as const;

function decodeOk(b: Uint8Array, v?: number): DfsmMessage {
  const r = decodeMessage(b, v);
  if (!r.ok) throw new Error(`decode failed: ${JSON.stringify(r.error)}`);
  return r.msg;
}

Deno.test("every captured line decodes with its group's version and re-encodes to the same bytes", () => {
  const lines = allCaptureLines();
  assertEquals(lines.length, 46);
  for (const l of lines) {
    assertEquals(l.rc, 1, `node${l.node}:${l.line} rc`);
    assert(l.group, `node${l.node}:${l.line} unknown handle ${l.handle}`);
    const m = decodeOk(l.bytes, VERSION[l.group]);
    assert(m.type <= 6, `node${l.node}:${l.line} type ${m.type}`);
    assertEquals(m.version, VERSION[l.group]);
    assertEquals(m.reserved, 0);
    // header time = the capture's send time (seconds)
    assertEquals(m.time, Math.floor(l.time), `node${l.node}:${l.line} time`);
    if (!isNormal(m)) assertEquals(m.subtype, 0);
    assertEquals(encodeMessage(m), l.bytes, `node${l.node}:${l.line} re-encode`);
  }
});

Deno.test("capture counts: node1 dcdb 1..19, node2 dcdb 1..3, kvstore 1,2,3 and 1,1 (restart)", () => {
  const counts = (node: 1 | 2, group: string) =>
    readCapture(node).filter((l) => l.group === group).map((l) => decodeOk(l.bytes))
      .filter(isNormal).map((m) => m.count);
  assertEquals(counts(1, "dcdb"), Array.from({ length: 19 }, (_, i) => i + 1));
  assertEquals(counts(2, "dcdb"), [1, 2, 3]);
  assertEquals(counts(1, "kvstore"), [1, 2, 3]);
  assertEquals(counts(2, "kvstore"), [1, 1]);
});

Deno.test("capture message types per node and group match spec 9.1", () => {
  const tally: Record<string, number> = {};
  for (const l of allCaptureLines()) {
    const m = decodeOk(l.bytes);
    const k = `node${l.node} ${l.group} ${MSG_TYPE_NAMES[m.type]}`;
    tally[k] = (tally[k] ?? 0) + 1;
  }
  assertEquals(tally, {
    "node1 dcdb SYNC_START": 2,
    "node1 dcdb STATE": 2,
    "node1 dcdb UPDATE": 5,
    "node1 dcdb UPDATE_COMPLETE": 2,
    "node1 dcdb NORMAL": 19,
    "node1 kvstore SYNC_START": 2,
    "node1 kvstore STATE": 2,
    "node1 kvstore NORMAL": 3,
    "node2 dcdb STATE": 2,
    "node2 dcdb NORMAL": 3,
    "node2 kvstore STATE": 2,
    "node2 kvstore NORMAL": 2,
  });
  // dcdb subtypes of node1: MKDIR 8, CREATE 4, WRITE 4, RENAME 1, DELETE 1, MTIME 1
  const sub: Record<number, number> = {};
  for (const l of readCapture(1).filter((l) => l.group === "dcdb")) {
    const m = decodeOk(l.bytes);
    if (isNormal(m)) sub[m.subtype] = (sub[m.subtype] ?? 0) + 1;
  }
  assertEquals(sub, { 1: 4, 2: 8, 3: 1, 4: 1, 5: 4, 6: 1 });
});

Deno.test("state messages carry their round's SYNC_START epoch (1/10701/00000002, then 00000004)", () => {
  for (const group of ["dcdb", "kvstore"] as const) {
    const starts = readCapture(1).filter((l) => l.group === group)
      .map((l) => decodeOk(l.bytes)).filter((m) => m.type === MsgType.SYNC_START)
      .map((m) => formatEpoch((m as StateMessage).epoch));
    assertEquals(starts, ["1/10701/00000002", "1/10701/00000004"]);
    for (const node of [1, 2] as const) {
      const epochs = readCapture(node).filter((l) => l.group === group)
        .map((l) => decodeOk(l.bytes)).filter((m) => !isNormal(m))
        .map((m) => formatEpoch((m as StateMessage).epoch));
      for (const e of epochs) assert(starts.includes(e), `${group} node${node} epoch ${e}`);
    }
  }
  // node1 line 1, decoded field by field (spec 9.2)
  const m = decodeOk(readCapture(1)[0].bytes) as StateMessage;
  assertEquals(m.type, 1);
  assertEquals(m.time, 1795561396);
  assertEquals(m.epoch, { counter: 2, time: 1795561396, nodeid: 1, pid: 10701 });
  assertEquals(m.payload.length, 0);
});

Deno.test("encoders write the documented layouts", () => {
  const n = encodeNormal(2, 1, 1795561411, 1, new Uint8Array([0xaa]));
  assertEquals(n.length, 25);
  assertEquals(
    Array.from(n.subarray(0, 24)),
    [0, 0, 2, 0, 1, 0, 0, 0, 0xc3, 0x17, 0x06, 0x6b, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
  );
  const big = decodeOk(encodeNormal(1, 1, 0, 2 ** 40 + 3, new Uint8Array()));
  assert(isNormal(big));
  assertEquals(big.count, 2 ** 40 + 3);
  const epoch = { counter: 4, time: 1795561423, nodeid: 1, pid: 10701 };
  const s = encodeState(MsgType.UPDATE_COMPLETE, 1, 1795561423, epoch);
  assertEquals(s, readCapture(1)[35].bytes);
  const vr = encodeState(MsgType.VERIFY_REQUEST, 1, 5, epoch, encodeVerifyRequestPayload(7n));
  assertEquals(vr.length, 40);
  assertEquals(decodeVerifyRequestPayload(decodeOk(vr).payload), 7n);
  const sum = new Uint8Array(32).map((_, i) => i);
  const v = encodeState(MsgType.VERIFY, 1, 5, epoch, encodeVerifyPayload(7n, sum));
  assertEquals(v.length, 72);
  assertEquals(decodeVerifyPayload(decodeOk(v).payload), { csumId: 7n, checksum: sum });
  assertEquals(decodeVerifyPayload(new Uint8Array(39)), undefined);
  assertEquals(decodeVerifyRequestPayload(new Uint8Array(9)), undefined);
  assertEquals(groupNameBytes("pve_dcdb_v1").length, 12);
  assertEquals(groupNameBytes("pve_kvstore_v1").length, 15);
});

Deno.test("decode errors are typed, in the order of spec 3.5", () => {
  const st = readCapture(1)[0].bytes;
  assertEquals(decodeMessage(st.subarray(0, 15), 1), {
    ok: false,
    error: { kind: "short", length: 15 },
  });
  // version is checked before the type's length
  assertEquals(decodeMessage(st.subarray(0, 20), 0), {
    ok: false,
    error: { kind: "newerProtocol", version: 1 },
  });
  assertEquals(decodeMessage(st, 2), { ok: false, error: { kind: "olderProtocol", version: 1 } });
  assertEquals(decodeMessage(st.subarray(0, 31), 1), {
    ok: false,
    error: { kind: "shortState", length: 31 },
  });
  const n = readCapture(1)[7].bytes;
  assertEquals(decodeMessage(n.subarray(0, 23), 1), {
    ok: false,
    error: { kind: "shortNormal", length: 23 },
  });
  // unknown types decode as state messages; the core decides
  const t9 = st.slice();
  t9[0] = 9;
  assertEquals(decodeOk(t9, 1).type, 9);
});

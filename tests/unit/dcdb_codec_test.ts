/** dcdb wire codecs against the C capture and the receiver checks of cluster spec 5.3, 5.7, 5.10. */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  DcdbMsg,
  decodeFuseMessage,
  decodeState,
  decodeUnlockMessage,
  decodeUpdate,
  encodeFuseMessage,
  encodeUnlockMessage,
  encodeUpdate,
  type FuseOp,
} from "../../src/dcdb/codec.ts";
import { encodeIndex } from "../../src/memdb/checksum.ts";
import { captureLines } from "./dcdb_capture.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("every database-group line of the capture decodes and re-encodes byte for byte", () => {
  const seen: Record<string, number> = {};
  for (const node of [1, 2] as const) {
    for (const m of captureLines(node)) {
      const where = `node${node}:${m.line}`;
      const key = m.type === 0 ? `normal${m.subtype}` : `type${m.type}`;
      seen[key] = (seen[key] ?? 0) + 1;
      if (m.type === 0) {
        if (m.subtype >= DcdbMsg.UnlockRequest) {
          const u = decodeUnlockMessage(m.payload);
          assert(u.ok, where);
          assertEquals(encodeUnlockMessage(u.value), m.payload, where);
          continue;
        }
        const op = decodeFuseMessage(m.subtype, m.payload);
        assert(op.ok, `${where}: ${!op.ok && op.error}`);
        const back = encodeFuseMessage(op.value);
        assertEquals(back.subtype, m.subtype, where);
        assertEquals(back.payload, m.payload, where);
      } else if (m.type === 2) {
        const idx = decodeState(m.payload);
        assert(idx.ok, `${where}: ${!idx.ok && idx.error}`);
        assertEquals(encodeIndex(idx.value), m.payload, where);
      } else if (m.type === 3) {
        const row = decodeUpdate(m.payload);
        assert(row.ok, `${where}: ${!row.ok && row.error}`);
        assertEquals(encodeUpdate(row.value), m.payload, where);
      } else {
        assertEquals(m.payload.length, 0, where); // SYNC_START, UPDATE_COMPLETE
      }
    }
  }
  // 9.1: node1 MKDIR 8, CREATE 4, WRITE 4, RENAME 1, DELETE 1, MTIME 1; node2 CREATE 1, WRITE 2.
  assertEquals(seen, {
    type1: 2,
    type2: 4,
    type3: 5,
    type4: 2,
    normal1: 6,
    normal2: 8,
    normal3: 1,
    normal4: 1,
    normal5: 5,
    normal6: 1,
  });
});

Deno.test("captured messages decode to the operations of the spec's walk-through (9.3)", () => {
  const n1 = captureLines(1).filter((m) => m.type === 0);
  const n2 = captureLines(2).filter((m) => m.type === 0);
  const op = (m: { subtype: number; payload: Uint8Array }) => {
    const d = decodeFuseMessage(m.subtype, m.payload);
    assert(d.ok);
    return d.value;
  };
  assertEquals(op(n1[0]), { type: "mkdir", path: "nodes" });
  assertEquals(n1[4].count, 5);
  assertEquals(op(n1[4]), {
    type: "write",
    path: "nodes/node1/qemu-server/100.conf",
    offset: 0,
    data: enc("cores: 2\nmemory: 2048\n"),
    truncate: false,
  });
  assertEquals(op(n1[7]), { type: "rename", path: "storage.cfg", to: "storage.cfg.new" });
  assertEquals(op(n1[8]), { type: "delete", path: "storage.cfg.new" });
  assertEquals(op(n1[9]), {
    type: "mtime",
    path: "nodes/node1/qemu-server/100.conf",
    mtime: 1700000000,
  });
  assertEquals(op(n2[2]), {
    type: "write",
    path: "datacenter.cfg",
    offset: 4,
    data: new Uint8Array(0),
    truncate: true,
  });
});

Deno.test("a whole-file update is one WRITE message with the truncate flag", () => {
  const data = enc("keyboard: de\n");
  const { subtype, payload } = encodeFuseMessage({
    type: "write",
    path: "datacenter.cfg",
    offset: 0,
    data,
    truncate: true,
  });
  assertEquals(subtype, DcdbMsg.Write);
  const dv = new DataView(payload.buffer);
  assertEquals([0, 4, 8, 12, 16].map((o) => dv.getUint32(o, true)), [13, 0, 15, 0, 1]);
  assertEquals(payload.length, 20 + 15 + 13);
});

function fuse(
  f: {
    size?: number;
    offset?: number;
    flags?: number;
    path?: Uint8Array;
    to?: Uint8Array;
    data?: Uint8Array;
    pathlen?: number;
    tolen?: number;
  },
) {
  const path = f.path ?? enc("a\0");
  const to = f.to ?? new Uint8Array(0);
  const data = f.data ?? new Uint8Array(0);
  const out = new Uint8Array(20 + path.length + to.length + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, f.size ?? data.length, true);
  dv.setUint32(4, f.offset ?? 0, true);
  dv.setUint32(8, f.pathlen ?? path.length, true);
  dv.setUint32(12, f.tolen ?? to.length, true);
  dv.setUint32(16, f.flags ?? 0, true);
  out.set(path, 20);
  out.set(to, 20 + path.length);
  out.set(data, 20 + path.length + to.length);
  return out;
}

Deno.test("malformed FUSE messages are rejected with the C log texts", () => {
  const err = (subtype: number, p: Uint8Array) => {
    const d = decodeFuseMessage(subtype, p);
    assert(!d.ok, "should be rejected");
    return d.error;
  };
  assertEquals(err(1, new Uint8Array(19)), "received short fuse message (19 < 20)");
  assertEquals(err(1, fuse({ size: 3 })), "received mailformed fuse message");
  assertEquals(
    err(2, fuse({ path: enc("ab") })),
    "received mailformed fuse message - 'path' not terminated",
  );
  assertEquals(
    err(4, fuse({ to: enc("b") })),
    "received mailformed fuse message - 'to' not terminated",
  );
  assertEquals(err(9, fuse({})), "received unknown message type (msg_type == 9)");
  // Recommended rejects (C27): embedded NUL, no path, `to` missing / misplaced, odd flags.
  assert(err(2, fuse({ path: enc("a\0b\0") })).includes("'path' contains NUL"));
  assert(err(2, fuse({ path: new Uint8Array(0) })).includes("no 'path'"));
  assert(err(4, fuse({})).includes("'to' missing"));
  assert(err(3, fuse({ to: enc("b\0") })).includes("non-rename"));
  assert(err(1, fuse({ flags: 2 })).includes("flags 2"));
  assert(err(2, fuse({ flags: 1 })).includes("unused fields"));
  assert(err(5, fuse({ data: enc("x") })).includes("unused fields"));
  assert(err(3, fuse({ offset: 7 })).includes("unused fields"));
  // MTIME carries its time in the offset field.
  assertEquals(decodeFuseMessage(6, fuse({ offset: 7 })), {
    ok: true,
    value: { type: "mtime", path: "a", mtime: 7 },
  });
});

Deno.test("encoders refuse what the wire cannot carry", () => {
  assertThrows(() => encodeFuseMessage({ type: "mkdir", path: "" }), /bad path/);
  assertThrows(() => encodeFuseMessage({ type: "mkdir", path: "\u0100" }), /byte string/);
  assertThrows(() =>
    encodeFuseMessage({
      type: "write",
      path: "a",
      offset: 2 ** 32,
      data: new Uint8Array(0),
      truncate: true,
    }), /u32/);
  const unlock = { type: "unlockRequest", path: "priv/lock/x" } as unknown as FuseOp;
  assertThrows(() => encodeFuseMessage(unlock), /no FUSE/);
});

Deno.test("names and paths are byte strings: non-UTF-8 bytes survive a round trip", () => {
  const payload = fuse({ path: new Uint8Array([0xff, 0xc3, 0x00]) });
  const d = decodeFuseMessage(2, payload);
  assert(d.ok);
  assertEquals(d.value, { type: "mkdir", path: "\xff\xc3" });
  assertEquals(encodeFuseMessage(d.value).payload, payload);
});

Deno.test("unlock messages: round trip and the C checks", () => {
  const checksum = new Uint8Array(32).fill(7);
  const p = encodeUnlockMessage({ checksum, path: "priv/lock/x" });
  assertEquals(p.length, 32 + 12);
  assertEquals(decodeUnlockMessage(p), { ok: true, value: { checksum, path: "priv/lock/x" } });
  assertEquals(decodeUnlockMessage(new Uint8Array(32)), {
    ok: false,
    error: "received short unlock message (32 < 33)",
  });
  const open = p.slice(0, p.length - 1);
  assertEquals(decodeUnlockMessage(open), {
    ok: false,
    error: "received mailformed unlock message - 'path' not terminated",
  });
});

Deno.test("UPDATE payloads: the C checks and the recommended ones", () => {
  const row = {
    inode: 22,
    parent: 21,
    version: 23,
    writer: 1,
    mtime: 1795561422,
    type: 8,
    name: "200.conf",
    data: enc("hostname: ct\n"),
  };
  const p = encodeUpdate(row);
  assertEquals(decodeUpdate(p), { ok: true, value: row });
  const err = (b: Uint8Array) => {
    const d = decodeUpdate(b);
    assert(!d.ok);
    return d.error;
  };
  assertEquals(err(p.subarray(0, 39)), "received short message (msg_len < 40)");
  assertEquals(err(p.subarray(0, 41)), "received short message (msg_len < 40)");
  const t7 = p.slice();
  t7[40] = 7;
  assertEquals(err(t7), "received mailformed message (unknown inode type 7)");
  assertEquals(
    err(p.subarray(0, p.length - 1)),
    "received mailformed message (msg_len != (size + namelen))",
  );
  const noNul = p.slice();
  noNul[41 + 8] = 0x41;
  assertEquals(err(noNul), "received mailformed message (name[namelen-1] != 0)");
  const zeroName = new Uint8Array(42);
  zeroName[40] = 4;
  new DataView(zeroName.buffer).setUint32(32, 1, true); // size 1, namelen 0
  assertEquals(err(zeroName), "received mailformed message (name[namelen-1] != 0)");
  const dirData = encodeUpdate({ ...row, type: 8 });
  dirData[40] = 4;
  assert(err(dirData).includes("directory with size 13"));
  // The root travels with an empty name (namelen 1) whatever its row name.
  const root = encodeUpdate({
    ...row,
    inode: 0,
    parent: 0,
    type: 4,
    name: "__version__",
    data: null,
  });
  assertEquals(root.length, 42);
});

Deno.test("STATE payloads: the C index checks and the recommended ones (C8)", () => {
  const idx = {
    version: 5,
    lastInode: 4,
    writer: 1,
    mtime: 9,
    entries: [
      { inode: 0, digest: new Uint8Array(32) },
      { inode: 4, digest: new Uint8Array(32).fill(1) },
    ],
  };
  const good = encodeIndex(idx);
  assertEquals(decodeState(good), { ok: true, value: idx });
  const err = (b: Uint8Array) => {
    const d = decodeState(b);
    assert(!d.ok);
    return d.error;
  };
  assertEquals(
    err(good.subarray(0, 31)),
    "received short memdb index (len < sizeof(memdb_index_t))",
  );
  assertEquals(err(good.subarray(0, 100)), "received mailformed memdb index (len != idx->bytes)");
  const lyingCount = good.slice();
  new DataView(lyingCount.buffer).setUint32(24, 3, true);
  assert(err(lyingCount).includes("count 3"));
  assert(err(encodeIndex({ ...idx, entries: [...idx.entries].reverse() })).includes("no root"));
  assert(
    err(encodeIndex({ ...idx, entries: [idx.entries[0], idx.entries[1], idx.entries[1]] }))
      .includes("not sorted"),
  );
  assert(err(encodeIndex({ ...idx, lastInode: 3 })).includes("last_inode 3"));
});

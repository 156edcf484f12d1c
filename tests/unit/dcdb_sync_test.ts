/** Leader selection, synced members and the update computation (cluster spec 5.8-5.9, section 13 cases 12, 13, 16). */
import { assertEquals } from "./assert.ts";
import { selectLeader, updateInodes } from "../../src/dcdb/sync.ts";
import { encodeIndex, type TreeIndex } from "../../src/memdb/checksum.ts";

const d = (n: number) => new Uint8Array(32).fill(n);

function idx(version: number, mtime: number, entries: [number, number][] = [[0, 0]]): TreeIndex {
  return {
    version,
    lastInode: entries[entries.length - 1][0],
    writer: 1,
    mtime,
    entries: entries.map(([inode, digest]) => ({ inode, digest: d(digest) })),
  };
}

function st(nodeid: number, pid: number, index: TreeIndex) {
  return { member: { nodeid, pid }, state: encodeIndex(index), index };
}

Deno.test("leader: the highest version wins whatever the node order (13.13)", () => {
  const r = selectLeader([st(1, 10, idx(9, 500)), st(3, 30, idx(10, 100)), st(2, 20, idx(9, 900))]);
  assertEquals(r.leader.member, { nodeid: 3, pid: 30 });
  assertEquals(r.synced, [{ nodeid: 3, pid: 30 }]);
});

Deno.test("leader: equal versions -> the newer root mtime wins (Quirk C2)", () => {
  const r = selectLeader([st(1, 10, idx(9, 500)), st(2, 20, idx(9, 501)), st(3, 30, idx(9, 100))]);
  assertEquals(r.leader.member, { nodeid: 2, pid: 20 });
});

Deno.test("leader: equal version and mtime -> the lowest (nodeid, pid), whatever the input order", () => {
  const a = idx(9, 500, [[0, 1]]), b = idx(9, 500, [[0, 2]]);
  const r = selectLeader([st(2, 5, a), st(1, 30, b), st(1, 20, a)]);
  assertEquals(r.leader.member, { nodeid: 1, pid: 20 });
  // Synced: the leader first, then the byte-identical others in table order.
  assertEquals(r.synced, [{ nodeid: 1, pid: 20 }, { nodeid: 2, pid: 5 }]);
});

Deno.test("synced members: the leader first even when it is not the lowest", () => {
  const same = idx(9, 500);
  const r = selectLeader([st(1, 1, same), st(2, 2, idx(10, 1)), st(3, 3, idx(10, 1))]);
  assertEquals(r.synced, [{ nodeid: 2, pid: 2 }, { nodeid: 3, pid: 3 }]);
});

Deno.test("writer, last_inode and count play no role in the choice", () => {
  const a = { ...idx(9, 500), writer: 7 };
  const b = idx(9, 500, [[0, 0], [5, 1], [9, 1]]);
  assertEquals(selectLeader([st(2, 2, b), st(1, 1, a)]).leader.member, { nodeid: 1, pid: 1 });
});

Deno.test("updates: entries whose (inode, digest) differ, each once, in inode order (13.16)", () => {
  const leader = idx(20, 1, [[0, 9], [2, 1], [4, 1], [6, 1], [8, 1]]);
  const a = idx(10, 1, [[0, 8], [2, 1], [3, 1], [4, 2]]); // lacks 6 and 8 (C7: cursor runs off the end)
  const b = idx(11, 1, [[0, 7], [2, 2], [4, 1], [6, 1], [8, 1], [10, 1]]);
  assertEquals(updateInodes(leader, [a, b]), [0, 2, 4, 6, 8]);
  assertEquals(updateInodes(leader, [b]), [0, 2]);
  // A synced member needs nothing; entries only the others have are never sent.
  assertEquals(updateInodes(leader, [leader]), []);
  assertEquals(updateInodes(leader, []), []);
});

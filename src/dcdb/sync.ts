/**
 * The pure pieces of the database group's sync round (cluster spec
 * 5.8-5.9): leader selection, synced members, which entries the leader
 * sends, and the rows it sends for them.
 *
 * @example
 * ```ts
 * import { selectLeader, updateInodes } from "./sync.ts";
 * // states: [{ member, state: bytes, index: decoded }] in any order
 * // const { leader, synced } = selectLeader(states);
 * // const inodes = updateInodes(leader.index, states.filter((s) => s !== leader).map((s) => s.index));
 * ```
 */
import type { MemberId } from "../dfsm/types.ts";
import type { Row } from "../memdb/load.ts";
import type { TreeIndex } from "../memdb/checksum.ts";
import type { Memdb } from "../memdb/memdb.ts";
import { EntryType } from "../memdb/entry.ts";

/** A CPG member (nodeid, pid). */
export type Member = MemberId;

/** One member's STATE: the raw index bytes and the decoded index. */
export interface MemberState<M extends Member = Member> {
  member: M;
  state: Uint8Array;
  index: TreeIndex;
}

/** Member-table order: (nodeid, pid) ascending, plain numeric comparison (Quirk C3). */
export function compareMembers(a: Member, b: Member): number {
  return a.nodeid - b.nodeid || a.pid - b.pid;
}

/** `n/p`, as the daemon logs members. */
export function memberName(m: Member): string {
  return `${m.nodeid}/${m.pid}`;
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Leader and synced members (spec 5.8), identical on every member: in
 * member-table order the first state is the candidate, a later one replaces
 * it only with a higher version, or an equal version and a higher root
 * mtime (Quirk C2). Synced = the leader and every member whose index is
 * byte-identical to the leader's; `synced` lists the leader first, then the
 * others in table order (the order of the `synced members:` log line).
 */
export function selectLeader<M extends Member>(
  states: readonly MemberState<M>[],
): { leader: MemberState<M>; synced: M[] } {
  if (states.length === 0) throw new Error("no states");
  const sorted = [...states].sort((a, b) => compareMembers(a.member, b.member));
  let leader = sorted[0];
  for (const s of sorted.slice(1)) {
    const v = s.index.version, lv = leader.index.version;
    if (v > lv || (v === lv && s.index.mtime > leader.index.mtime)) leader = s;
  }
  const synced = [leader.member];
  for (const s of sorted) {
    if (s !== leader && sameBytes(s.state, leader.state)) synced.push(s.member);
  }
  return { leader, synced };
}

/**
 * The inodes the leader must send (spec 5.9 step 1), in inode order (Quirk
 * C9), each once: every leader entry that some other index lacks or holds
 * with another digest. A member lacking the leader's highest inodes simply
 * has no entry at the cursor (Quirk C7). Entries only the others have are
 * never sent (the commit deletes them).
 */
export function updateInodes(leader: TreeIndex, others: readonly TreeIndex[]): number[] {
  const need = new Set<number>();
  for (const other of others) {
    let j = 0;
    for (const e of leader.entries) {
      while (j < other.entries.length && other.entries[j].inode < e.inode) j++;
      const o = other.entries[j];
      if (!o || o.inode !== e.inode || !sameBytes(o.digest, e.digest)) need.add(e.inode);
    }
  }
  return leader.entries.map((e) => e.inode).filter((i) => need.has(i));
}

/**
 * The leader's current rows for `inodes` (spec 5.9 step 2), full metadata
 * and content, the root with an empty name. An inode missing from the tree
 * yields the C critical line instead.
 */
export function updateRows(memdb: Memdb, inodes: readonly number[]): Row[] | string {
  const rows: Row[] = [];
  for (const inode of inodes) {
    const e = memdb.byInodeNumber(inode);
    if (!e) {
      return `can get inode data for inode ${inode.toString(16).toUpperCase().padStart(16, "0")}`;
    }
    rows.push({
      inode: e.inode,
      parent: e.parent,
      version: e.version,
      writer: e.writer,
      mtime: e.mtime,
      type: e.type,
      name: e.inode === 0 ? "" : e.name,
      data: e.type === EntryType.File ? e.data : null,
    });
  }
  return rows;
}

/**
 * What a commit takes away from this member (Quirk C1's recommendation, so
 * operators can recover changes a resync discards): the paths of local
 * entries absent from the leader's index (removed) and of local entries the
 * leader holds with another digest (replaced), root excluded, in inode order.
 */
export function discardedPaths(
  memdb: Memdb,
  leader: TreeIndex,
): { removed: string[]; replaced: string[] } {
  const theirs = new Map(leader.entries.map((e) => [e.inode, e.digest]));
  const removed: string[] = [];
  const replaced: string[] = [];
  for (const e of memdb.index().entries) {
    if (e.inode === 0) continue;
    const d = theirs.get(e.inode);
    if (d && sameBytes(d, e.digest)) continue;
    const path = memdb.pathOf(e.inode) ?? `inode ${e.inode}`;
    (d ? replaced : removed).push(path);
  }
  return { removed, replaced };
}

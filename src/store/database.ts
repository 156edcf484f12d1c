/**
 * memdb backed by config.db: every mutation is committed to SQLite before
 * its result is returned (spec 4.4). A failed commit sets the sticky error
 * flag and reports EIO; the in-memory change is kept, as in the original.
 */
import {
  type Change,
  type FileState,
  Memdb,
  type MutationResult,
  type Stamp,
} from "../memdb/memdb.ts";
import type { Op } from "../memdb/op.ts";
import { Errno } from "../util/errno.ts";
import { buildTree, type Row } from "../memdb/load.ts";
import { buildIndex, decodeIndex, encodeIndex } from "../memdb/checksum.ts";
import { EntryType } from "../memdb/entry.ts";
import { ConfigDb } from "./config_db.ts";

export type Logger = (level: "crit" | "err" | "warn" | "info" | "debug", msg: string) => void;

const silent: Logger = () => {};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Database {
  private constructor(
    readonly store: ConfigDb,
    readonly memdb: Memdb,
    private readonly log: Logger,
  ) {}

  /**
   * Opens `path` (created if missing) and loads the tree. Throws with a
   * message naming the bad row when the database is corrupt; never repairs.
   * `now` stamps a fresh database's version row and starts lock clocks.
   */
  static open(path: string, now: number, log: Logger = silent): Database {
    const store = ConfigDb.open(path);
    try {
      const rows = [...store.readRows()];
      let memdb: Memdb;
      if (rows.length === 0) {
        memdb = Memdb.fresh(now);
        store.writeVersion(memdb.root);
      } else {
        memdb = Memdb.load(rows, now);
      }
      for (const w of memdb.warnings) log("crit", w);
      return new Database(store, memdb, log);
    } catch (e) {
      store.close();
      throw e;
    }
  }

  /**
   * Listeners told of every applied change, whatever applied it (a local op,
   * a peer's op, a resync), after it is on disk. `origin` is whatever the
   * caller of `apply` passed (the FUSE layer uses it to know which changes
   * the kernel already saw); undefined for resyncs.
   */
  readonly applied = new Set<(change: Change, origin?: unknown) => void>();

  private tell(change: Change, origin?: unknown): void {
    for (const f of this.applied) f(change, origin);
  }

  /**
   * Persists a successful mutation; turns a failed commit into EIO. A write
   * that could not be persisted is taken back (`before`), so the file keeps
   * its previous content; any other change stays in RAM, as in the original,
   * behind the sticky error flag.
   */
  private persist(r: MutationResult, origin: unknown, before?: FileState): MutationResult {
    if (r.errno !== 0) return r;
    const c = r.change;
    if (c.upsert.length === 0 && c.remove.length === 0) return r;
    try {
      this.store.commit(c.upsert, c.remove, this.memdb.root);
    } catch (e) {
      this.memdb.errors = true;
      if (before) this.memdb.restoreFile(before);
      this.log("crit", `database write failed, filesystem now refuses changes: ${e}`);
      return { errno: Errno.EIO };
    }
    this.tell(c, origin);
    return r;
  }

  /** Applies one operation and commits it to config.db before returning. */
  apply(op: Op, s: Stamp, origin?: unknown): MutationResult {
    return this.applyAll([op], s, origin);
  }

  /** Applies the writes of one file handle as one update (see `Memdb.applyAll`). */
  applyAll(ops: readonly Op[], s: Stamp, origin?: unknown): MutationResult {
    const before = ops[0]?.type === "write" ? this.memdb.saveFile(ops[0].path) : undefined;
    return this.persist(this.memdb.applyAll(ops, s), origin, before);
  }

  /**
   * Whole-state replacement after a cluster resync (spec 4.6): drops every
   * local row missing from the leader's index, stores the received rows,
   * reloads inside the transaction and commits only if the result's index
   * equals the leader's byte for byte. Any failure rolls back, sets the
   * error flag and returns the reason.
   */
  replaceState(leaderIndex: Uint8Array, received: readonly Row[], now: number): string | null {
    try {
      const leader = decodeIndex(leaderIndex);
      const keep = new Set(leader.entries.map((e) => e.inode));
      let loaded!: ReturnType<typeof buildTree>;
      this.store.transaction(() => {
        for (const e of this.memdb.sortedEntries()) {
          if (e.inode !== 0 && !keep.has(e.inode)) this.store.deleteRow(e.inode);
        }
        for (const r of received) {
          this.store.upsertRow(r.inode === 0 ? { ...r, type: EntryType.Dir } : r);
        }
        const rows = [...this.store.readRows()];
        loaded = buildTree(rows);
        if (loaded.root.version === 0) throw new Error("resynced tree has version 0");
        const sorted = [...loaded.byInode.values()].sort((a, b) => a.inode - b.inode);
        const mine = encodeIndex(buildIndex(sorted, loaded.root));
        if (!sameBytes(mine, leaderIndex)) throw new Error("resynced tree differs from leader");
      });
      const change = this.memdb.replace(loaded, now);
      for (const w of this.memdb.warnings) this.log("crit", w);
      this.tell(change);
      return null;
    } catch (e) {
      this.memdb.errors = true;
      const msg = `cluster resync failed: ${(e as Error).message}`;
      this.log("crit", msg);
      return msg;
    }
  }

  close(): void {
    this.store.close();
  }
}

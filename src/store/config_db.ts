/**
 * config.db through Deno's built-in SQLite (spec 4): the `tree` table, WAL,
 * one transaction per mutation. The only module that touches the file.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { chmodSync } from "node:fs";
import { EntryType } from "../memdb/entry.ts";
import type { Entry } from "../memdb/entry.ts";
import type { Row } from "../memdb/load.ts";
import { nameBytes } from "../memdb/checksum.ts";

/** The original's DDL, byte for byte, so `.schema` looks the same. */
const SCHEMA = "CREATE TABLE IF NOT EXISTS tree (" +
  "  inode INTEGER PRIMARY KEY NOT NULL," +
  "  parent INTEGER NOT NULL CHECK(typeof(parent)=='integer')," +
  "  version INTEGER NOT NULL CHECK(typeof(version)=='integer')," +
  "  writer INTEGER NOT NULL CHECK(typeof(writer)=='integer')," +
  "  mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer')," +
  "  type INTEGER NOT NULL CHECK(typeof(type)=='integer')," +
  "  name TEXT NOT NULL," +
  "  data BLOB);";

/** Page size of databases we create (SQLite's minimum; see `open`). */
export const NEW_DB_PAGE_SIZE = 512;
const WAL_CHECKPOINT_BYTES = 4 << 20;

/** The `__version__` row's fields: the root entry. */
export interface VersionRow {
  version: number;
  writer: number;
  mtime: number;
}

const latin1 = new TextDecoder("latin1");

export class StoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

export class ConfigDb {
  private readonly db: DatabaseSync;
  private readonly upsertStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private readonly beginStmt: StatementSync;
  private readonly commitStmt: StatementSync;

  private constructor(readonly path: string, db: DatabaseSync) {
    this.db = db;
    // An upsert that updates an existing row in place (same-size content rewrites the
    // same pages) instead of REPLACE's delete + insert, which churns the freelist.
    this.upsertStmt = db.prepare(
      "INSERT INTO tree (inode, parent, version, writer, mtime, type, name, data) " +
        "VALUES (?, ?, ?, ?, ?, ?, CAST(? AS TEXT), ?) ON CONFLICT(inode) DO UPDATE SET " +
        "parent = excluded.parent, version = excluded.version, writer = excluded.writer, " +
        "mtime = excluded.mtime, type = excluded.type, name = excluded.name, data = excluded.data",
    );
    this.beginStmt = db.prepare("BEGIN");
    this.commitStmt = db.prepare("COMMIT");
    this.deleteStmt = db.prepare("DELETE FROM tree WHERE inode = ?");
  }

  /** Opens (creating if missing) with mode 0600, WAL and synchronous=NORMAL. */
  static open(path: string): ConfigDb {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
    } catch (e) {
      throw new StoreError(`cannot open ${path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      chmodSync(path, 0o600);
      // New databases get 512-byte pages: a change rewrites only the pages it touches, so
      // small files cost about their own size on disk instead of two 4 KiB pages (the
      // file's and the version row's), and edits that keep most bytes skip the unchanged
      // overflow pages. Existing databases keep their page size (the C daemon's is 4096).
      db.exec(`PRAGMA page_size=${NEW_DB_PAGE_SIZE}`);
      const mode = db.prepare("PRAGMA journal_mode=WAL").get() as { journal_mode: string };
      if (mode.journal_mode !== "wal") throw new Error(`journal_mode is ${mode.journal_mode}`);
      db.exec("PRAGMA synchronous=NORMAL");
      db.exec("PRAGMA busy_timeout=10000");
      // Checkpoint about every 4 MiB of WAL whatever the page size (SQLite counts pages).
      const { page_size } = db.prepare("PRAGMA page_size").get() as { page_size: number };
      db.exec(
        `PRAGMA wal_autocheckpoint=${Math.max(1000, Math.floor(WAL_CHECKPOINT_BYTES / page_size))}`,
      );
      db.exec(SCHEMA);
      return new ConfigDb(path, db);
    } catch (e) {
      db.close();
      throw new StoreError(`cannot use ${path} as config.db: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /** Every row; the name as a byte string, exactly as stored. */
  *readRows(): Generator<Row> {
    const stmt = this.db.prepare(
      "SELECT inode, parent, version, writer, mtime, type, CAST(name AS BLOB) AS name, data " +
        "FROM tree",
    );
    for (const r of stmt.iterate()) {
      const row = r as Record<string, unknown>;
      const name = row.name;
      const data = row.data;
      yield {
        inode: row.inode as number,
        parent: row.parent as number,
        version: row.version as number,
        writer: row.writer as number,
        mtime: row.mtime as number,
        type: row.type as number,
        name: name instanceof Uint8Array ? latin1.decode(name) : null,
        data: data instanceof Uint8Array ? data : data === null ? null : new Uint8Array(0),
      };
    }
  }

  private upsert(e: Row | Entry): void {
    const data = e.type === EntryType.File && e.data && e.data.length > 0 ? e.data : null;
    this.upsertStmt.run(
      e.inode,
      e.parent,
      e.version,
      e.writer,
      e.mtime,
      e.type,
      nameBytes(e.name!),
      data,
    );
  }

  private upsertVersion(v: VersionRow, type: number): void {
    this.upsertStmt.run(
      0,
      0,
      v.version,
      v.writer,
      v.mtime,
      type,
      nameBytes("__version__"),
      null,
    );
  }

  /** Runs `fn` in one transaction; rolls back and rethrows on failure. */
  transaction<T>(fn: () => T): T {
    this.beginStmt.run();
    try {
      const r = fn();
      this.commitStmt.run();
      return r;
    } catch (e) {
      try {
        this.db.exec("ROLLBACK");
      } catch { /* the failed COMMIT may have ended it already */ }
      throw e;
    }
  }

  /** Persists one mutation: removed rows, changed rows, the version row. */
  commit(upsert: readonly Entry[], remove: readonly number[], root: VersionRow): void {
    this.transaction(() => {
      for (const inode of remove) this.deleteRow(inode);
      for (const e of upsert) this.upsert(e);
      this.upsertVersion(root, EntryType.File);
    });
  }

  /** Writes only the version row, outside a transaction (fresh database). */
  writeVersion(root: VersionRow): void {
    this.upsertVersion(root, EntryType.File);
  }

  /** Deletes one row; inside `transaction`. */
  deleteRow(inode: number): void {
    this.deleteStmt.run(inode);
  }

  /** Upserts one row (inode 0 is the version row); inside `transaction`. */
  upsertRow(r: Row): void {
    if (r.inode === 0) this.upsertVersion(r, r.type);
    else this.upsert(r);
  }

  /** SQL access for tests and tools. */
  get sql(): DatabaseSync {
    return this.db;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

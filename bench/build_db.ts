/** Builds a config.db of `files` 512-byte files (100 per directory) in one transaction. */
import { Database } from "../src/store/database.ts";

export function buildDb(path: string, files: number): void {
  const S = { writer: 0, mtime: 1_700_000_000 };
  const content = new Uint8Array(512).map((_, i) => i & 0xff);
  const db = Database.open(path, S.mtime);
  // Bulk: memdb in RAM, then every row in one transaction (this is set-up, not measured).
  db.store.transaction(() => {
    for (let d = 0; d < files / 100; d++) {
      db.memdb.mkdir(`dir${d}`, S);
      for (let f = 0; f < 100; f++) {
        db.memdb.create(`dir${d}/file${f}.cfg`, S);
        db.memdb.write(`dir${d}/file${f}.cfg`, S, content, 0, true);
      }
    }
    for (const r of db.memdb.rows()) db.store.upsertRow(r.inode === 0 ? { ...r, type: 8 } : r);
  });
  db.close();
}

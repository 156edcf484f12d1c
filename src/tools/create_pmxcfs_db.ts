/**
 * create_pmxcfs_db DIR DBFILE (spec 12): puts every regular file of DIR (not
 * recursive) at the root of a config.db, writer 0, all with the same mtime.
 * Exit 0 on success, 255 on any failure (usage, unreadable DIR, open failure,
 * a name that already exists, a file over 1 MiB).
 */
import { Database } from "../store/database.ts";

export function createPmxcfsDb(args: string[], now = Math.floor(Date.now() / 1000)): number {
  if (args.length !== 2) {
    console.error("usage: create_pmxcfs_db DIR DBFILE");
    return 255;
  }
  const [dir, dbfile] = args;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    console.error(`unable to open directory '${dir}': ${(e as Error).message}`);
    return 255;
  }
  let db: Database;
  try {
    db = Database.open(dbfile, now);
  } catch (e) {
    console.error(`unable to open database '${dbfile}': ${(e as Error).message}`);
    return 255;
  }
  try {
    const s = { writer: 0, mtime: now };
    for (const e of entries) {
      if (!e.isFile) continue;
      const data = Deno.readFileSync(`${dir}/${e.name}`);
      const c = db.apply({ type: "create", path: e.name }, s);
      if (c.errno !== 0) {
        console.error(`unable to create '${e.name}' (errno ${c.errno})`);
        return 255;
      }
      const w = db.apply({ type: "write", path: e.name, offset: 0, data, truncate: true }, s);
      if (w.errno !== 0 || w.value !== data.length) {
        console.error(`unable to write '${e.name}' (errno ${w.errno})`);
        return 255;
      }
    }
    return 0;
  } finally {
    db.close();
  }
}

if (import.meta.main) Deno.exit(createPmxcfsDb(Deno.args));

/** Shared helpers for unit tests: temp databases and byte utilities. */
import { Database } from "../../src/store/database.ts";
import type { Stamp } from "../../src/memdb/memdb.ts";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array | number): string =>
  typeof b === "number" ? `errno ${b}` : new TextDecoder().decode(b);

/** Writer 0 at a fixed time: the local-mode stamp of the spec's test cases. */
export const T0: Stamp = { writer: 0, mtime: 1000 };

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as BufferSource);
  return Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A temporary directory removed when the returned object is disposed. */
export function tempDir(): { path: string; [Symbol.dispose](): void } {
  const path = Deno.makeTempDirSync({ prefix: "pmxcfs-test-" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** Opens a fresh database in a temp dir; `reopen` closes and loads it again. */
export function freshDb(now = 1000) {
  const dir = tempDir();
  const path = `${dir.path}/config.db`;
  const h = {
    path,
    db: Database.open(path, now),
    reopen(at = now) {
      h.db.close();
      h.db = Database.open(path, at);
      return h.db;
    },
    [Symbol.dispose]() {
      h.db.close();
      dir[Symbol.dispose]();
    },
  };
  return h;
}

/** The repository's root directory (ends with a slash). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;

/**
 * The C daemon's artefacts (config.db, manifest.json, version.json, README.md), copied into
 * the repository so a fresh clone tests without anything beside it.
 */
export const C_MADE = new URL("../fixtures/c-made/", import.meta.url).pathname;

/** One path of c-made/manifest.json, as the C daemon showed it through FUSE. */
export interface ManifestItem {
  path: string;
  type: "dir" | "file";
  mode: string;
  mtime: number;
  size?: number;
  sha256?: string;
}

export function readManifest(): ManifestItem[] {
  return JSON.parse(Deno.readTextFileSync(`${C_MADE}/manifest.json`));
}

/** The guest directories of two nodes, as the VMID test cases use them. */
export const GUEST_DIRS = [
  "nodes",
  "nodes/n1",
  "nodes/n2",
  "nodes/n1/qemu-server",
  "nodes/n2/qemu-server",
  "nodes/n2/lxc",
  "nodes/n1/lxc",
];

/** The two entry types memdb knows (Linux `DT_DIR` and `DT_REG`). */
export const EntryType = { Dir: 4, File: 8 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/**
 * One node of the tree. Names are byte strings: every char code is one byte
 * (0-255), so names that are not UTF-8 survive unchanged.
 *
 * File content is never mutated in place: a write installs a new array, so a
 * reader holding the old one keeps a consistent snapshot.
 */
export interface Entry {
  readonly inode: number;
  parent: number;
  version: number;
  writer: number;
  mtime: number;
  readonly type: EntryType;
  name: string;
  /** File content; `null` for directories and empty files. */
  data: Uint8Array | null;
  /** Children by name; `null` for files. */
  children: Map<string, Entry> | null;
}

/** Byte length of a file's content; 0 for directories. */
export function entrySize(e: Entry): number {
  return e.data ? e.data.length : 0;
}

export function isDir(e: Entry): boolean {
  return e.type === EntryType.Dir;
}

/** Upper limits of the tree. */
export const Limits = {
  /** Largest file, in bytes (a file of exactly this size is allowed). */
  maxFileSize: 1024 * 1024,
  /** Filesystem size reported by statfs and, beyond the original, enforced. */
  blockSize: 4096,
  totalBlocks: 32768,
  /** Inode count reported by statfs and, beyond the original, enforced. */
  maxInodes: 262144,
  nameMax: 256,
} as const;

/** Seeded random operation sequences over a small, collision-rich namespace. */
import { prng } from "./prng.ts";
import type { MutationResult, Stamp } from "../../src/memdb/memdb.ts";
import {
  create,
  del,
  mkdir,
  mtime,
  rename,
  type Target,
  truncate,
  unlockRequest,
  write,
} from "./ops.ts";

const DIRS = ["a", "a/b", "c", "nodes", "nodes/n1", "nodes/n2", "priv", "priv/lock"];
const NAMES = ["x", "y", "z.cfg", "100.conf"];
const GUEST = ["nodes/n1/qemu-server", "nodes/n2/qemu-server", "nodes/n1/lxc", "nodes/n2/lxc"];

/** A random op; returns a label (for failure messages) and the result. */
export function randomOps(seed: number, count: number) {
  const r = prng(seed);
  const dirs = [...DIRS, ...GUEST];
  const path = () => {
    const roll = r.int(10);
    if (roll < 4) return `${r.pick(GUEST)}/${100 + r.int(4)}.conf`;
    if (roll < 5) return `priv/lock/L${r.int(3)}`;
    if (roll < 7) return r.pick(dirs);
    return `${r.pick(dirs)}/${r.pick(NAMES)}`;
  };
  let now = 1_700_000_000;
  const ops: ((t: Target) => MutationResult)[] = [];
  const labels: string[] = [];
  // Start from the skeleton a PVE node has, so most ops have a parent.
  for (const d of dirs) {
    ops.push((t) => t.apply(mkdir(d), { writer: 0, mtime: now }));
    labels.push(`mkdir ${d}`);
  }
  for (let i = 0; i < count; i++) {
    now += r.int(40);
    const s: Stamp = { writer: r.int(3), mtime: now, now };
    const p = path();
    const kind = r.int(16);
    let op: (t: Target) => MutationResult;
    let label: string;
    if (kind < 2) [op, label] = [(t) => t.apply(mkdir(p), s), `mkdir ${p}`];
    else if (kind < 4) [op, label] = [(t) => t.apply(create(p), s), `create ${p}`];
    else if (kind < 8) {
      const big = r.int(50) === 0;
      const off = big ? 1048576 - r.int(3000) : r.int(6000);
      const data = new Uint8Array(big ? r.int(6000) : r.int(3000)).map(() => r.int(256));
      const trunc = r.int(3) === 0;
      [op, label] = [
        (t) => t.apply(write(p, data, off, trunc), s),
        `write ${p} ${off}+${data.length}`,
      ];
    } else if (kind < 9) {
      const len = r.int(8000);
      [op, label] = [(t) => t.apply(truncate(p, len), s), `truncate ${p} ${len}`];
    } else if (kind < 10) {
      const m = now - r.int(100);
      [op, label] = [(t) => t.apply(mtime(p, m), s), `utime ${p}`];
    } else if (kind < 12) [op, label] = [(t) => t.apply(del(p), s), `delete ${p}`];
    else if (kind < 15) {
      const q = path();
      [op, label] = [(t) => t.apply(rename(p, q), s), `rename ${p} ${q}`];
    } else [op, label] = [(t) => t.apply(unlockRequest(p), s), `unlock ${p}`];
    ops.push(op);
    labels.push(label);
  }
  return { ops, labels };
}

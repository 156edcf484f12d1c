/**
 * The write rules of README "How writes reach the tree", through real
 * processes and syscalls inside the daemon's mount namespace. One test per
 * point of the write-path issue:
 *
 *   1. concurrent appenders: two `>>` shell loops lose no line (20 runs of 2 x 200)
 *   2. non-overlapping ranges through two handles both survive, in either close
 *      order; on an overlap the later commit wins on the overlap only
 *   3. a failed write (EFBIG) keeps the old file and close() reports it: cp of
 *      2 MiB, libc open(O_TRUNC)/write/close, and a handle kept open past the quiet second
 *   4. no torn, NUL-padded or empty reads while one writer alternates two versions (10 s)
 *   5. a stat between write and close leaves no stale size: another process reads all
 *      3000 bytes right after close (50 files), also after `cp -p` and `tar x`
 *   6. a shell redirect `echo x > existing` is one version (no empty file seen, one
 *      change-counter bump per redirect)
 *   7. after directory renames, writes (through a handle opened before them, and through
 *      new opens, truncate and utimens) land in the renamed file, not in a new file that
 *      took its old path
 */
import { assert, assertEquals } from "../unit/assert.ts";
import { type Daemon, withDaemon } from "./daemon_helpers.ts";
import { shq, systemTestSkipReason } from "./helpers.ts";

const skip = systemTestSkipReason();
if (skip) console.log(`write-rule system tests skipped: ${skip}`);
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: skip !== undefined, sanitizeOps: false, sanitizeResources: false, fn });

const FIX = new URL("./fixtures/write_rules.ts", import.meta.url).pathname;
/** The helper script as a shell command prefix. */
const HELPER = `${shq(Deno.execPath())} run --allow-all ${shq(FIX)}`;
const EFBIG = 27;

/** Runs the helper script in the namespace and parses its JSON line. */
// deno-lint-ignore no-explicit-any
async function helper(d: Daemon, args: string[], timeoutMs = 30000): Promise<any> {
  const r = await d.exec([Deno.execPath(), "run", "--allow-all", FIX, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`helper ${args[0]} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Runs a bash script in the namespace; fails on a non-zero exit. */
async function bash(d: Daemon, script: string, timeoutMs = 30000): Promise<string> {
  const r = await d.exec(["/bin/bash", "-c", script], { timeoutMs });
  if (r.code !== 0) throw new Error(`bash failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

async function read(d: Daemon, rel: string): Promise<string> {
  const [r] = await d.ops([["read", d.p(rel)]]);
  assert(r.ok, `read ${rel}: ${r.code}`);
  return r.value as string;
}

function runs(s: string): string {
  // "AAAB" -> "3A1B": a readable summary of a byte pattern.
  return s.replace(/(.)\1*/gs, (m, c) => `${m.length}${c === "\0" ? "\\0" : c}`);
}

test("1: two concurrent >> loops keep all 400 lines (20 runs)", () =>
  withDaemon(async (d) => {
    await bash(
      d,
      `set -e; cd ${shq(d.p(""))}; mkdir app
      for r in $(seq 20); do
        (for i in $(seq 200); do echo "a $i" >> app/f$r; done) &
        (for i in $(seq 200); do echo "b $i" >> app/f$r; done) &
        wait
      done`,
      60000,
    );
    const want = [...Array(200).keys()].flatMap((i) => [`a ${i + 1}`, `b ${i + 1}`]).sort();
    const kept: number[] = [];
    let firstBad: string | undefined;
    for (let r = 1; r <= 20; r++) {
      const lines = (await read(d, `app/f${r}`)).split("\n").filter((l) => l !== "").sort();
      kept.push(lines.filter((l, i) => want.includes(l) && lines[i - 1] !== l).length);
      if (firstBad === undefined && JSON.stringify(lines) !== JSON.stringify(want)) {
        const missing = want.filter((l) => !lines.includes(l));
        const extra = lines.filter((l, i) => !want.includes(l) || lines[i - 1] === l);
        firstBad = `run ${r}: missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`;
      }
    }
    console.log(`distinct expected lines kept per run: ${kept.join(" ")}`);
    assertEquals({ kept: kept.join(" "), firstBad }, {
      kept: Array(20).fill(400).join(" "),
      firstBad: undefined,
    });
  }));

test("2: ranges written through two handles both survive; the later commit wins on overlaps", () =>
  withDaemon(async (d) => {
    const cases: [string, string][] = [
      ["disjoint-12", "A".repeat(100) + "B".repeat(100)],
      ["disjoint-21", "A".repeat(100) + "B".repeat(100)],
      ["overlap-12", "A".repeat(100) + "B".repeat(100)],
      ["overlap-21", "A".repeat(150) + "B".repeat(50)],
    ];
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const [order, expect] of cases) {
      const f = d.p(`h-${order}`);
      await d.ops([["write", f, ""]]);
      const r = await helper(d, ["handles", f, order]);
      const w1 = order.startsWith("overlap") ? 150 : 100;
      assertEquals(r, { w1: [w1, 0], w2: [100, 0], closes: [[0, 0], [0, 0]] }, order);
      got[order] = runs(await read(d, `h-${order}`));
      want[order] = runs(expect);
    }
    assertEquals(got, want);
  }));

test("3: a write failing EFBIG keeps the old file and close() reports EFBIG", () =>
  withDaemon(async (d) => {
    const old = "keep: me\n".repeat(10);
    await d.ops([["write", d.p("f.cfg"), old], ["write", d.p("g.cfg"), old], [
      "write",
      d.p("q.cfg"),
      old,
    ]]);
    // cp of a 2 MiB file over it.
    const big = `${d.dir}/big`;
    await Deno.writeFile(big, new Uint8Array(2 * 1024 * 1024).fill(0x7a));
    const cp = await d.exec(["/usr/bin/cp", big, d.p("f.cfg")]);
    const afterCp = await read(d, "f.cfg");
    // libc: open(O_WRONLY|O_TRUNC), write 1000 B, write 2 MiB at 1000, close.
    const sys = await helper(d, ["efbig", d.p("g.cfg")]);
    const afterSys = await read(d, "g.cfg");
    // A handle kept open past the quiet second after its write failed.
    const quiet = await helper(d, ["quiet", d.p("q.cfg")]);
    const afterQuiet = await read(d, "q.cfg");
    const summary = {
      cpFailed: cp.code !== 0,
      afterCp: runs(afterCp.slice(0, 20)) + ` (${afterCp.length} B)`,
      sysFirstWrite: sys.first,
      sysLastWrite: sys.writes.at(-1),
      sysClose: sys.close,
      afterSys: runs(afterSys.slice(0, 20)) + ` (${afterSys.length} B)`,
      quietGood: quiet.good,
      quietBad: quiet.bad,
      quietDuringHold: quiet.duringHold === old,
      quietClose: quiet.close,
      afterQuiet: runs(afterQuiet.slice(0, 20)) + ` (${afterQuiet.length} B)`,
    };
    const oldShown = runs(old.slice(0, 20)) + ` (${old.length} B)`;
    console.log(JSON.stringify({ ...summary, cpStderr: cp.stderr.trim(), sysWrites: sys.writes }));
    assertEquals(summary, {
      cpFailed: true,
      afterCp: oldShown,
      sysFirstWrite: [1000, 0],
      sysLastWrite: [-1, EFBIG],
      sysClose: [-1, EFBIG],
      afterSys: oldShown,
      quietGood: [100, 0],
      quietBad: [-1, EFBIG],
      quietDuringHold: true,
      quietClose: [-1, EFBIG],
      afterQuiet: oldShown,
    });
  }));

/** Two versions that tell every kind of bad read apart. */
function version(ch: string, size: number): string {
  let s = "";
  for (let line = 0; s.length < size; line++) {
    s += `${ch} ${String(line).padStart(3, "0")} `.padEnd(31, ch) + "\n";
  }
  return s.slice(0, size - 1) + "\n";
}

test("4: readers never see a torn, NUL-padded or empty version (10 s)", () =>
  withDaemon(async (d) => {
    const v1 = version("x", 310);
    const v2 = version("y", 510);
    const f = d.p("torn.cfg");
    await d.ops([["write", f, v1]]);
    const ms = "10000";
    const [w, r1, r2] = await Promise.all([
      helper(d, ["alternate", f, ms, v1, v2]),
      helper(d, ["reader", f, ms, "-", "file", v1, v2]),
      helper(d, ["reader", f, ms, "-", "cat", v1, v2]),
    ]);
    console.log(JSON.stringify({ writer: w, readFileSync: r1, readLoop: r2 }));
    assert(w.writes > 1000, `only ${w.writes} writes`);
    for (const r of [r1, r2]) {
      assert(r.reads > 1000 && r.v1 > 0 && r.v2 > 0, `too few reads: ${JSON.stringify(r)}`);
    }
    const bad = (r: typeof r1) => ({ empty: r.empty, nulPadded: r.nulPadded, other: r.other });
    assertEquals({ readFileSync: bad(r1), readLoop: bad(r2) }, {
      readFileSync: { empty: 0, nulPadded: 0, other: 0 },
      readLoop: { empty: 0, nulPadded: 0, other: 0 },
    });
  }));

test("5: a stat between write and close leaves no stale size for the next reader", () =>
  withDaemon(async (d) => {
    const n = 50;
    const out = await bash(
      d,
      `set -eo pipefail; mkdir ${shq(d.p("st"))}
      ${HELPER} statwriter ${shq(d.p("st"))} ${n} | ${HELPER} checker`,
    );
    const sizes: Record<string, number> = JSON.parse(out);
    const wrong = Object.entries(sizes).filter(([, s]) => s !== 3000);
    // cp -p and tar x of a small file, then cat from another process at once.
    // Owner root:www-data and mode 0640, what the mount accepts, so -p and tar can keep them.
    const src = `${d.dir}/small.cfg`;
    const small = "small: file\n".repeat(25);
    await Deno.writeTextFile(src, small, { mode: 0o640 });
    await Deno.chmod(src, 0o640);
    await Deno.chown(src, 0, 33);
    const tools = await bash(
      d,
      `set -e; cd ${shq(d.dir)}; tar cf small.tar small.cfg; cd ${shq(d.p(""))}
      for i in $(seq 10); do
        cp -p ${shq(src)} cp$i.cfg; echo "cp$i $(cat cp$i.cfg | wc -c)"
        mkdir t$i; tar xpf ${shq(d.dir)}/small.tar -C t$i
        echo "tar$i $(cat t$i/small.cfg | wc -c)"
      done`,
    );
    const toolWrong = tools.trim().split("\n").filter((l) => !l.endsWith(` ${small.length}`));
    const result = {
      files: Object.keys(sizes).length,
      wrong: `${wrong.length}/${n}` + (wrong.length ? `, e.g. ${wrong.slice(0, 3).join(" ")}` : ""),
      toolWrong: toolWrong.join(", "),
    };
    console.log(JSON.stringify(result));
    assertEquals(result, { files: n, wrong: `0/${n}`, toolWrong: "" });
  }));

test("6: a shell redirect onto an existing file is one version, never an empty file", () =>
  withDaemon(async (d) => {
    const f = "datacenter.cfg"; // a file with a change counter in .version
    const v1 = "keyboard: de\n";
    const v2 = "keyboard: en-us\n";
    await d.ops([["write", d.p(f), v1]]);
    const counter = async () =>
      Number(/"datacenter.cfg": (\d+)/.exec(await read(d, ".version"))![1]);
    const before = await counter();
    const stop = shq(`${d.dir}/stop`);
    const json = shq(`${d.dir}/reader.json`);
    // The reader polls from before the first redirect until after the last (200 redirects).
    const out = await bash(
      d,
      `set -e; cd ${shq(d.p(""))}
      ${HELPER} reader ${f} 20000 ${stop} file ${shq(v1)} ${shq(v2)} > ${json} &
      while [ ! -e ${stop}.ready ]; do sleep 0.01; done
      for i in $(seq 100); do echo 'keyboard: en-us' > ${f}; echo 'keyboard: de' > ${f}; done
      touch ${stop}; wait; cat ${json}`,
    );
    const r = JSON.parse(out);
    const bumps = (await counter()) - before;
    console.log(JSON.stringify({ reader: r, counterBumps: bumps }));
    assert(r.reads >= 50, `only ${r.reads} reads`);
    assertEquals({ empty: r.empty, nulPadded: r.nulPadded, other: r.other, bumps }, {
      empty: 0,
      nulPadded: 0,
      other: 0,
      bumps: 200,
    });
  }));

test("7: after directory renames, writes land in the renamed file, not in its old path", () =>
  withDaemon(async (d) => {
    // fd 3 is opened on A/f before the renames and written after them; A/f is then a new file.
    const out = await bash(
      d,
      `cd ${shq(d.p(""))}
      mkdir A B; echo one > A/f
      exec 3<>A/f
      mv A/f B/g && mv A C && mv B/g C/f || echo "renames failed"
      truncate -s 0 C/f 2>&1 && echo "truncate ok"
      echo "after truncate: $(cat C/f | wc -c) B"
      mkdir A && echo victim > A/f && touch -d @2000000 A/f
      echo new >&3; exec 3>&-
      echo "held: C/f=$(cat C/f) A/f=$(cat A/f)"
      echo newer > C/f && touch -d @1000000 C/f
      echo "reopened: C/f=$(cat C/f) $(stat -c %Y C/f) A/f=$(cat A/f) $(stat -c %Y A/f)"`,
    );
    assertEquals(out.trim().split("\n"), [
      "truncate ok",
      "after truncate: 0 B",
      "held: C/f=new A/f=victim",
      "reopened: C/f=newer 1000000 A/f=victim 2000000",
    ]);
  }));

/**
 * The local-mode daemon through real syscalls and tools ([FUSE] cases of
 * spec section 15 that apply to local mode). Root only; every mount lives in
 * a private mount namespace that dies with the daemon.
 */
import { assert, assertEquals } from "../unit/assert.ts";
import { daemonArgs, daemonCommand, dataDir, startDaemon, withDaemon } from "./daemon_helpers.ts";
import { privateMountNs, shq, systemTestSkipReason } from "./helpers.ts";
import { Database } from "../../src/store/database.ts";
import { C_MADE } from "../unit/helpers.ts";

const skip = systemTestSkipReason();
if (skip) console.log(`daemon system tests skipped: ${skip}`);
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: skip !== undefined, sanitizeOps: false, sanitizeResources: false, fn });

const WWW = 33;
const S_IFMT = 0o170000;

function mode(r: { value?: { mode: number } }): string {
  const m = r.value!.mode;
  const t = (m & S_IFMT) === 0o040000 ? "d" : (m & S_IFMT) === 0o120000 ? "l" : "-";
  return t + (m & 0o7777).toString(8).padStart(4, "0");
}

test("41, 51, 57: modes, owners, listing and .members of a fresh local node", () =>
  withDaemon(async (d) => {
    const setup = await d.ops([
      ["mkdir", d.p("priv")],
      ["write", d.p("priv/x"), "secret"],
      ["mkdir", d.p("nodes/n1")],
      ["mkdir", d.p("nodes/n1/priv")],
      ["write", d.p("nodes/n1/priv/k"), "k"],
      ["write", d.p("nodes/n1/private"), "p"],
      ["write", d.p("file.cfg"), "f"],
      ["mkdir", d.p("dir")],
    ]);
    assert(setup.every((r) => r.ok), JSON.stringify(setup));
    const paths = [
      "",
      "file.cfg",
      "dir",
      "priv",
      "priv/x",
      "nodes/n1/priv",
      "nodes/n1/priv/k",
      "nodes/n1/private",
      "local",
      ".version",
      ".debug",
      ".members",
      ".vmlist",
      ".rrd",
      ".clusterlog",
    ];
    const st = await d.ops(paths.map((p) => ["stat", d.p(p)]));
    assertEquals(Object.fromEntries(paths.map((p, i) => [p, mode(st[i])])), {
      "": "d0755",
      "file.cfg": "-0640",
      "dir": "d0755",
      "priv": "d0700",
      "priv/x": "-0600",
      "nodes/n1/priv": "d0700",
      "nodes/n1/priv/k": "-0600",
      "nodes/n1/private": "-0640",
      "local": "l0755",
      ".version": "-0440",
      ".debug": "-0640",
      ".members": "-0440",
      ".vmlist": "-0440",
      ".rrd": "-0440",
      ".clusterlog": "-0440",
    });
    for (const r of st) assertEquals([r.value.uid, r.value.gid], [0, WWW]);
    assertEquals(st[0].value.mtime, 0);
    const [link, ls, members] = await d.ops([
      ["readlink", d.p("local")],
      ["readdir", d.p("")],
      ["read", d.p(".members")],
    ]);
    assertEquals(link.value, "nodes/pve1");
    assertEquals(ls.value, [
      ".clusterlog",
      ".debug",
      ".members",
      ".rrd",
      ".version",
      ".vmlist",
      "dir",
      "file.cfg",
      "local",
      "lxc",
      "nodes",
      "openvz",
      "priv",
      "qemu-server",
    ]);
    assertEquals(members.value, `{\n"nodename": "pve1",\n"version": 0\n}\n`);
    const lsa = await d.sh(`ls -a ${d.p("")}`);
    assert(lsa.stdout.split("\n").includes("..") && lsa.stdout.split("\n").includes("."));
  }));

test("44, 45: chmod and chown are accepted only as no-ops towards the shown owner/mode", () =>
  withDaemon(async (d) => {
    await d.ops([["write", d.p("f"), "x"], ["mkdir", d.p("priv")], ["write", d.p("priv/x"), "y"], [
      "mkdir",
      d.p("dir"),
    ]]);
    const r = await d.ops([
      ["chmod", d.p("f"), 0o640],
      ["chmod", d.p("priv/x"), 0o600],
      ["chmod", d.p("f"), 0o644],
      ["chmod", d.p("dir"), 0o755],
      ["chmod", d.p("f"), 0o600],
      ["chown", d.p("f"), 0, WWW],
      ["chown", d.p("f"), -1, -1],
      ["chown", d.p("f"), 33, -1],
      ["chown", d.p("f"), -1, 0],
      ["stat", d.p("f")],
    ]);
    assertEquals(r.slice(0, 9).map((x) => x.ok ? "ok" : x.code), [
      "ok",
      "ok",
      "EPERM",
      "EPERM",
      "EPERM",
      "ok",
      "ok",
      "EPERM",
      "EPERM",
    ]);
    assertEquals(mode(r[9]), "-0640");
  }));

test("46: symlink, link, mkfifo, xattrs and renames onto synthetic names are refused", () =>
  withDaemon(async (d) => {
    await d.ops([["write", d.p("a"), "x"]]);
    const r = await d.ops([
      ["symlink", d.p("y"), "x"],
      ["link", d.p("b"), d.p("a")],
      ["rename", d.p("a"), d.p("local")],
      ["rename", d.p(".version"), d.p("v")],
    ]);
    // Kernels since 6.5 turn a link() answered ENOSYS into EPERM; older ones pass ENOSYS on.
    assertEquals(r[0].code, "ENOSYS");
    assert(["ENOSYS", "EPERM"].includes(r[1].code!), r[1].code);
    assertEquals(r.slice(2).map((x) => x.code), ["EACCES", "EACCES"]);
    const [fifo] = await d.ops([["mkfifo", d.p("p")]]);
    assertEquals(fifo.code, "ENOSYS");
    const xa = await d.sh(`setfattr -n user.x -v 1 ${d.p("a")}`);
    assert(xa.code !== 0 && /not supported/i.test(xa.stderr), xa.stderr);
  }));

test("47, 48: .debug switches debug logging; generated files refuse writes", () =>
  withDaemon(async (d) => {
    const dbg = d.p(".debug");
    const r = await d.ops([
      ["read", dbg],
      ["pwrite", dbg, "1\n", 0],
      ["read", dbg],
      ["pwrite", dbg, "x\n", 0],
      ["pwrite", dbg, "1", 0],
      ["pwrite", dbg, "0\n", 2],
      ["truncate", dbg, 0],
      ["pwrite", dbg, "0\nextra", 0],
      ["read", dbg],
      ["pwrite", d.p(".version"), "x", 0],
      ["openTrunc", d.p(".version")],
      ["utimes", d.p(".version"), 1, 1],
    ]);
    assertEquals(r.map((x) => x.ok ? x.value : x.code), [
      "0\n",
      2,
      "1\n",
      "EIO",
      "EIO",
      "EIO",
      null,
      2,
      "0\n",
      "EIO",
      "EIO",
      "EACCES",
    ]);
  }));

test("49, 50: statfs figures, st_blocks in 4096-byte units, nlink and times", () =>
  withDaemon(async (d) => {
    const sf = async () => {
      const r = await d.sh(`stat -f -c '%S %b %f %c %d %l' ${d.p("")}`);
      return r.stdout.trim().split(" ").map(Number);
    };
    const [bsize, blocks, bfree, files, ffree, namemax] = await sf();
    assertEquals([bsize, blocks, files, namemax], [4096, 32768, 262144, 256]);
    await d.ops([["writeOnce", d.p("f5000"), 5000, "a"]]);
    const after = await sf();
    assertEquals([bfree - after[2], ffree - after[4]], [2, 1]);
    await d.ops([["writeOnce", d.p("f4097"), 4097, "b"], ["mkdir", d.p("dir")]]);
    const [f, dir] = await d.ops([["stat", d.p("f4097")], ["stat", d.p("dir")]]);
    assertEquals([f.value.blocks, f.value.nlink, dir.value.nlink], [2, 1, 2]);
    assertEquals([f.value.atime, f.value.ctime], [f.value.mtime, f.value.mtime]);
    assert(Math.abs(f.value.mtime - Date.now() / 1000) < 30);
  }));

test("52 (our rule): one write() of 300 KiB then close is ONE version bump", () =>
  withDaemon(async (d) => {
    const version = async () => {
      const [r] = await d.ops([["read", d.p(".version")]]);
      return r.value as string;
    };
    await d.ops([["write", d.p("storage.cfg"), ""]]);
    const before = /"storage.cfg": (\d+)/.exec(await version())![1];
    const [w, content] = await d.ops([
      ["writeOnce", d.p("storage.cfg"), 300 * 1024, "z"],
      ["read", d.p("storage.cfg")],
    ]);
    assertEquals(w.value, 300 * 1024);
    assertEquals(content.value, "z".repeat(300 * 1024));
    const afterCount = /"storage.cfg": (\d+)/.exec(await version())![1];
    assertEquals(Number(afterCount) - Number(before), 1);
  }));

test("writes reach the tree at close, or after a quiet second while the file stays open", () =>
  withDaemon(async (d) => {
    const r = await d.ops([
      ["write", d.p("f"), "old"],
      ["writeHold", d.p("f"), "new", 0],
      ["writeHold", d.p("f"), "newer", 1600],
      ["read", d.p("f")],
      ["writeUnlinked", d.p("g")],
      ["exists", d.p("g")],
    ]);
    assertEquals(r.map((x) => x.value), [null, "old", "newer", "newer", 4, false]);
  }));

test("kernel page cache stays coherent with same-size rewrites and open readers", () =>
  withDaemon(async (d) => {
    const [r] = await d.ops([["coherence", d.p("c")]]);
    assertEquals(r.value, ["aaaa", "bbbb", "bbbb", "cccc", "dddd", "dddd", "eeee"]);
  }));

test("a directory of 1500 entries lists completely across many readdir calls", () =>
  withDaemon(async (d) => {
    const r = await d.sh(`set -e; mkdir ${d.p("big")}; cd ${d.p("big")}
      for i in $(seq 1500); do : > "file-with-a-longish-name-$i.cfg"; done
      ls -f | sort | uniq | wc -l; ls | wc -l`);
    assertEquals(r.stdout.trim().split("\n"), ["1502", "1500"], r.stderr);
  }));

test("Q12: a generated file is read as it was when opened", () =>
  withDaemon(async (d) => {
    const r = await d.sh(`set -e; cd ${d.p("")}; mkdir -p nodes/pve1/qemu-server
      exec 3< .vmlist
      echo x > nodes/pve1/qemu-server/100.conf
      cat <&3; echo ---; cat .vmlist`);
    const [before, after] = r.stdout.split("---\n");
    assert(!before.includes('"100"') && after.includes('"100"'), r.stdout + r.stderr);
  }));

test("53: touch -a changes nothing, touch sets mtime and bumps the version", () =>
  withDaemon(async (d) => {
    await d.ops([["write", d.p("user.cfg"), "u"], ["utimes", d.p("user.cfg"), 1000, 1000]]);
    const count = async () => {
      const [r] = await d.ops([["read", d.p(".version")]]);
      return Number(/"user.cfg": (\d+)/.exec(r.value)![1]);
    };
    const c0 = await count();
    const ta = await d.sh(`touch -a ${d.p("user.cfg")}`);
    assertEquals(ta.code, 0, ta.stderr);
    const [s1] = await d.ops([["stat", d.p("user.cfg")]]);
    assertEquals([s1.value.mtime, await count()], [1000, c0]);
    await d.sh(`touch ${d.p("user.cfg")}`);
    const [s2] = await d.ops([["stat", d.p("user.cfg")]]);
    assert(Math.abs(s2.value.mtime - Date.now() / 1000) < 30, String(s2.value.mtime));
    assertEquals(await count(), c0 + 1);
  }));

test("38: an unlock request removes a lock only after more than 120 s", async () => {
  using data = dataDir();
  const clock = `${data.path}/clock`;
  const t0 = Math.floor(Date.now() / 1000);
  Deno.writeTextFileSync(clock, String(t0));
  const d = await startDaemon(data.path, [], { PMXCFS_TEST_CLOCK_FILE: clock });
  try {
    const L = d.p("priv/lock/L");
    const r = await d.ops([["mkdir", d.p("priv")], ["mkdir", d.p("priv/lock")], ["mkdir", L]]);
    assert(r.every((x) => x.ok));
    const unlock = () => d.ops([["utimes", L, 0, 0], ["exists", L]]);
    assertEquals((await unlock()).map((x) => x.ok ? x.value : x.code), ["EACCES", true]);
    Deno.writeTextFileSync(clock, String(t0 + 120));
    assertEquals((await unlock()).map((x) => x.ok ? x.value : x.code), ["EACCES", true]);
    Deno.writeTextFileSync(clock, String(t0 + 121));
    assertEquals((await unlock()).map((x) => x.ok ? x.value : x.code), [null, false]);
  } finally {
    await d.stop();
  }
});

test("POSIX tools: cp, mv, rm, mkdir, cat, truncate, ln refusal; errnos of the tree", () =>
  withDaemon(async (d) => {
    const m = d.p("");
    const sh = await d.sh(`set -e; cd ${m}
      mkdir -p nodes/pve1/qemu-server
      printf 'cores: 2\\n' > nodes/pve1/qemu-server/100.conf
      cp nodes/pve1/qemu-server/100.conf /tmp/pmxcfs-copy.$$ && rm /tmp/pmxcfs-copy.$$
      cp nodes/pve1/qemu-server/100.conf storage.cfg
      mv storage.cfg user.cfg
      truncate -s 4 user.cfg
      cat user.cfg; echo
      rm user.cfg
      cat .vmlist`);
    assertEquals(sh.code, 0, sh.stderr);
    assert(sh.stdout.startsWith("core\n"), sh.stdout);
    assert(sh.stdout.includes(`"100": { "node": "pve1", "type": "qemu"`), sh.stdout);
    const r = await d.ops([
      ["mkdir", d.p("nodes")],
      ["write", d.p("nodes/pve2/x"), "x"],
      ["rmdir", d.p("nodes")],
      ["read", d.p("missing")],
      ["mkdir", d.p("nodes/pve1/qemu-server/100.conf/x")],
      ["truncate", d.p("nodes/pve1/qemu-server/100.conf"), 1048577],
      ["writeOnce", d.p("big"), 1048577, "x"],
    ]);
    assertEquals(r.map((x) => x.code), [
      "EEXIST",
      "ENOENT",
      "ENOTEMPTY",
      "ENOENT",
      "ENOTDIR",
      "EFBIG",
      "EFBIG",
    ]);
    // VMID uniqueness through the mount (29).
    const vm = await d.sh(
      `mkdir -p ${m}/nodes/pve2/qemu-server && echo x > ${m}/nodes/pve2/qemu-server/100.conf`,
    );
    assert(vm.code !== 0 && /File exists/.test(vm.stderr), vm.stderr);
  }));

test("restart keeps all data, and a database entry named like a synthetic file is hidden", async () => {
  using data = dataDir();
  let d = await startDaemon(data.path);
  try {
    const r = await d.ops([["write", d.p("nodes/a.cfg"), "persist me"], ["write", d.p("b"), "b"]]);
    assert(r.every((x) => x.ok));
  } finally {
    await d.stop();
  }
  // Put a root entry named `local` into the database behind the daemon's back (51).
  const db = Database.open(`${data.path}/config.db`, 0);
  assertEquals(db.apply({ type: "create", path: "local" }, { writer: 0, mtime: 1 }).errno, 0);
  db.close();
  d = await startDaemon(data.path);
  try {
    const [a, b, ls, link] = await d.ops([
      ["read", d.p("nodes/a.cfg")],
      ["read", d.p("b")],
      ["readdir", d.p("")],
      ["readlink", d.p("local")],
    ]);
    assertEquals([a.value, b.value], ["persist me", "b"]);
    assertEquals(ls.value.filter((n: string) => n === "local").length, 1);
    assertEquals(link.value, "nodes/pve1");
  } finally {
    await d.stop();
  }
});

test("59, and cluster mode absent: -l serves a DB with corosync.conf, without -l it refuses", async () => {
  using data = dataDir();
  const db = Database.open(`${data.path}/config.db`, 0);
  const s0 = { writer: 0, mtime: 1 };
  db.apply({ type: "create", path: "corosync.conf" }, s0);
  const conf = new TextEncoder().encode("totem {}\n");
  db.apply({ type: "write", path: "corosync.conf", offset: 0, data: conf, truncate: true }, s0);
  db.close();
  const d = await startDaemon(data.path, ["-l"]);
  try {
    const [w] = await d.ops([["write", d.p("x"), "writable"]]);
    assert(w.ok);
  } finally {
    await d.stop();
  }
  const [cmd, ...pre] = daemonCommand();
  const out = await new Deno.Command("unshare", {
    args: [
      "--mount",
      "--propagation",
      "private",
      cmd,
      ...pre,
      "-f",
      ...daemonArgs(data.path, `${data.path}/mnt`),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 255);
  assert(/this version has no cluster mode yet/.test(new TextDecoder().decode(out.stderr)));
});

test("62: exit status 255 for an argument, 1 for an unknown option, with the message", async () => {
  const [cmd, ...pre] = daemonCommand();
  const run = async (args: string[]) => {
    const o = await new Deno.Command(cmd, {
      args: [...pre, ...args],
      stdout: "null",
      stderr: "piped",
    })
      .output();
    return [o.code, new TextDecoder().decode(o.stderr)];
  };
  assertEquals(await run(["extra-arg"]), [255, "pmxcfs: too many arguments\n"]);
  assertEquals(await run(["--x"]), [1, "pmxcfs: unknown option '--x' (see pmxcfs --help)\n"]);
  assertEquals(await run(["-x"]), [1, "pmxcfs: unknown option '-x' (see pmxcfs --help)\n"]);
  assertEquals(await run(["-fx"]), [1, "pmxcfs: unknown option '-x' (see pmxcfs --help)\n"]);
  assertEquals(await run(["--bogus=1", "extra"]), [
    1,
    "pmxcfs: unknown option '--bogus' (see pmxcfs --help)\n",
  ]);
  assertEquals(await run(["--mount"]), [
    1,
    "pmxcfs: option '--mount' needs a value (see pmxcfs --help)\n",
  ]);
  const help = await new Deno.Command(cmd, { args: [...pre, "--help"], stdout: "piped" }).output();
  assertEquals(help.code, 0);
});

/** Runs a shell script in its own private mount namespace (for multi-process scenarios). */
async function nsScript(script: string, timeoutMs = 60000) {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const [setpriv, ...prefix] = privateMountNs(["--pid", "--fork", "--kill-child"]);
    const out = await new Deno.Command(setpriv, {
      args: [
        ...prefix,
        "sh",
        "-c",
        script,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(t);
  }
}

test("60, 61: single instance, pid file, restart flag, background start", async () => {
  using data = dataDir();
  const cmd = daemonCommand().map(shq).join(" ");
  const args = daemonArgs(data.path, `${data.path}/mnt`).map(shq).join(" ");
  const D = shq(data.path);
  const r = await nsScript(
    `set -u
    ${cmd} ${args}; echo "bg=$?"
    pid=$(cat ${D}/pmxcfs.pid); echo "pidfile=$(stat -c %a ${D}/pmxcfs.pid)"
    kill -0 "$pid" && echo alive
    test -L ${D}/mnt/local && echo mounted
    test -e ${D}/run/cfs-restart-flag && echo flag-present || echo flag-absent
    start=$(date +%s); ${cmd} -f ${args} 2>/dev/null; echo "second=$? after $(( $(date +%s) - start ))s"
    kill -0 "$pid" && echo still-alive
    kill -TERM "$pid"; for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    test -e ${D}/pmxcfs.pid && echo pid-left || echo pid-removed
    echo "flag=$(stat -c '%a %G' ${D}/run/cfs-restart-flag)"
    grep -q " ${D}/mnt " /proc/self/mounts && echo still-mounted || echo unmounted`,
    90000,
  );
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines.length, 10, r.stdout + r.stderr);
  assertEquals(lines[0], "bg=0");
  assertEquals(lines[1], "pidfile=644");
  assertEquals(lines.slice(2, 5), ["alive", "mounted", "flag-absent"]);
  const m = /^second=(\d+) after (\d+)s$/.exec(lines[5])!;
  assert(m && m[1] !== "0" && Number(m[2]) >= 9, lines[5]);
  assertEquals(lines.slice(6), ["still-alive", "pid-removed", "flag=440 www-data", "unmounted"]);
});

test("a stale mount left by a killed daemon is cleaned at start", async () => {
  using data = dataDir();
  const cmd = daemonCommand().map(shq).join(" ");
  const args = daemonArgs(data.path, `${data.path}/mnt`).map(shq).join(" ");
  const M = shq(`${data.path}/mnt`);
  const r = await nsScript(`
    ${cmd} -f ${args} 2>/dev/null & p=$!
    for i in $(seq 200); do test -L ${M}/local && break; sleep 0.05; done
    echo data > ${M}/kept
    kill -KILL $p; wait $p 2>/dev/null
    ls ${M} >/dev/null 2>&1 || echo stale
    ${cmd} -f ${args} 2>/dev/null & q=$!
    for i in $(seq 200); do test -L ${M}/local && break; sleep 0.05; done
    cat ${M}/kept
    kill -TERM $q; wait $q; echo "exit=$?"`);
  assertEquals(r.stdout.trim().split("\n"), ["stale", "data", "exit=0"], r.stderr);
});

// ---- start-up, command line and logging (issue 6, points 14-17) -------------------------

/** `daemonArgs` with some options given other values. */
function argsWith(data: string, mount: string, over: Record<string, string>): string[] {
  const a = daemonArgs(data, mount);
  for (const [k, v] of Object.entries(over)) a[a.indexOf(k) + 1] = v;
  return a;
}

const CMD = () => daemonCommand().map(shq).join(" ");
const ARGS = (a: string[]) => a.map(shq).join(" ");

/** sh: waits until `$1/local` is a symlink (the daemon mounted `$1`). */
const WAIT_MOUNTED =
  `waitm() { for i in $(seq 300); do test -L "$1/local" && return 0; sleep 0.05; done; return 1; }
  stopd() { kill -TERM "$1"; for i in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; }`;

/**
 * sh: gives the namespace a /dev of its own holding only the devices the daemon needs (and
 * no /dev/log), so a test decides what syslog looks like without touching the host.
 */
const PRIVATE_DEV = `O=$(mktemp -d); mount --bind /dev "$O"; mount -t tmpfs -o mode=755 tmpfs /dev
  for n in null zero full random urandom tty fuse; do
    [ -e "$O/$n" ] && : > /dev/$n && mount --bind "$O/$n" /dev/$n
  done
  ln -s /proc/self/fd /dev/fd; umount -l "$O"; rmdir "$O"`;

test("start-up failures exit 255 with one line on stderr and leave no mount", async () => {
  using data = dataDir();
  const D = data.path;
  const M = `${D}/mnt`;
  const cases: [string, string, string[], string | RegExp][] = [
    [
      "data dir is a file",
      `: > ${shq(`${D}/f1`)}`,
      ["-f", ...argsWith(`${D}/f1`, M, { "--run-dir": `${D}/run` })],
      `data directory ${D}/f1 is not a directory`,
    ],
    [
      "run dir is a file",
      `: > ${shq(`${D}/f2`)}`,
      ["-f", ...argsWith(D, M, { "--run-dir": `${D}/f2` })],
      `run directory ${D}/f2 is not a directory`,
    ],
    [
      "pid file directory missing",
      "",
      ["-f", ...argsWith(D, M, { "--pid-file": `${D}/none/p.pid` })],
      `cannot write pid file ${D}/none/p.pid: directory ${D}/none does not exist`,
    ],
    [
      "pid file directory missing, background",
      "",
      argsWith(D, M, { "--pid-file": `${D}/none/p.pid` }),
      `cannot write pid file ${D}/none/p.pid: directory ${D}/none does not exist`,
    ],
    [
      "data dir read-only",
      `mkdir ${shq(`${D}/ro`)} && mount -t tmpfs -o ro tmpfs ${shq(`${D}/ro`)}`,
      ["-f", ...argsWith(`${D}/ro`, M, { "--run-dir": `${D}/run` })],
      `data directory ${D}/ro is read-only: cannot create the lock file ${D}/ro/.pmxcfs.lockfile`,
    ],
    [
      "mount point not empty",
      `mkdir -p ${shq(M)} && echo x > ${shq(`${M}/x`)}`,
      ["-f", ...argsWith(D, M, {})],
      `mount point ${M} is not empty (it holds 'x'): refusing to mount over it`,
    ],
    [
      "config.db read-only",
      `mkdir ${shq(`${D}/rodb`)} && cp ${shq(`${C_MADE}/config.db`)} ${shq(`${D}/rodb/`)} &&
      mount --bind ${shq(`${D}/rodb/config.db`)} ${shq(`${D}/rodb/config.db`)} &&
      mount -o remount,bind,ro ${shq(`${D}/rodb/config.db`)}`,
      ["-f", ...argsWith(`${D}/rodb`, M, { "--run-dir": `${D}/run` })],
      new RegExp(`^DB load failed for ${D}/rodb/config\\.db: .*read-only file system`),
    ],
  ];
  for (const [name, setup, args, want] of cases) {
    const r = await nsScript(
      `rm -rf ${shq(M)}; ${setup}
      timeout -s KILL 40 ${CMD()} ${ARGS(args)}; echo "rc=$?"
      grep -c " ${M} " /proc/self/mounts`,
      60000,
    );
    const [rc, mounts] = r.stdout.trim().split("\n");
    assertEquals([rc, mounts], ["rc=255", "0"], `${name}: ${r.stderr}`);
    const m = /^\[main\] crit: (.*)\n$/.exec(r.stderr);
    assert(
      m && (typeof want === "string" ? m[1] === want : want.test(m[1])),
      `${name}: ${r.stderr}`,
    );
  }
});

test("the pid file is <run-dir>/pmxcfs.pid when --run-dir is given; the host's is untouched", async () => {
  using data = dataDir();
  const D = data.path;
  const args = daemonArgs(D, `${D}/mnt`);
  args.splice(args.indexOf("--pid-file"), 2);
  // /run is a tmpfs of this namespace, so even a wrong default cannot reach the host's file.
  const r = await nsScript(
    `mount -t tmpfs tmpfs /run; ${WAIT_MOUNTED}
    ${CMD()} ${ARGS(args)} 2>/dev/null; echo "rc=$?"
    waitm ${shq(`${D}/mnt`)} && echo mounted
    pid=$(cat ${shq(`${D}/run/pmxcfs.pid`)}) && kill -0 "$pid" && echo "pid-alive"
    test -e /run/pve-cluster.pid && echo "host-pid-file" || echo "no-host-pid-file"
    stopd "$pid"
    test -e ${shq(`${D}/run/pmxcfs.pid`)} && echo left || echo removed`,
  );
  assertEquals(
    r.stdout.trim().split("\n"),
    ["rc=0", "mounted", "pid-alive", "no-host-pid-file", "removed"],
    r.stderr,
  );
});

test("--nodename follows the node-name rules: invalid or empty names exit 255", async () => {
  using data = dataDir();
  const D = data.path;
  for (
    const [name, want] of [
      ["bad_name", "invalid node name 'bad_name'"],
      ["-pve", "invalid node name '-pve'"],
      ["pve.example", "invalid node name 'pve.example'"],
      ["", "invalid node name '': it is empty"],
    ]
  ) {
    const args = argsWith(D, `${D}/mnt`, { "--nodename": name });
    const r = await nsScript(`timeout -s KILL 30 ${CMD()} -f ${ARGS(args)}; echo "rc=$?"`);
    assertEquals(r.stdout.trim(), "rc=255", name);
    assertEquals(r.stderr.split("\n").length, 2, r.stderr);
    assert(r.stderr.startsWith(`pmxcfs: ${want}`), r.stderr);
  }
  const ok = await nsScript(
    `${WAIT_MOUNTED}
    ${CMD()} -f ${ARGS(argsWith(D, `${D}/mnt`, { "--nodename": "Pve-2" }))} 2>/dev/null & p=$!
    waitm ${shq(`${D}/mnt`)} && readlink ${shq(`${D}/mnt/local`)}; stopd $p`,
  );
  assertEquals(ok.stdout.trim(), "nodes/Pve-2", ok.stderr);
});

test("start-up creates nodes/<node> with its guest and priv dirs once, through the database", async () => {
  using data = dataDir();
  const clock = `${data.path}/clock`;
  Deno.writeTextFileSync(clock, "1700000123");
  const env = { PMXCFS_TEST_CLOCK_FILE: clock };
  const dirs = [
    "nodes",
    "nodes/pve1",
    ...["qemu-server", "lxc", "openvz", "priv"].map((x) => `nodes/pve1/${x}`),
  ];
  /** The stored tree's version and the writers of the node dirs, read behind the daemon. */
  const stored = () => {
    const db = Database.open(`${data.path}/config.db`, 0);
    try {
      const writers = dirs.map((p) => db.memdb.lookup(p)?.writer);
      return { version: db.memdb.root.version, writers };
    } finally {
      db.close();
    }
  };
  let d = await startDaemon(data.path, [], env);
  try {
    const st = await d.ops(dirs.map((p) => ["stat", d.p(p)]));
    assertEquals(st.map(mode), ["d0755", "d0755", "d0755", "d0755", "d0755", "d0700"]);
    for (const x of st.slice(1)) assertEquals(x.value.mtime, 1700000123);
    const link = await d.sh(`cd ${d.p("local")} && ls -a . && cd ${d.p("qemu-server")} && pwd -P`);
    assertEquals(
      link.stdout,
      `.\n..\nlxc\nopenvz\npriv\nqemu-server\n${d.p("nodes/pve1/qemu-server")}\n`,
    );
    assert(/created nodes\/pve1 with qemu-server, lxc, openvz and priv/.test(d.stderr()));
  } finally {
    await d.stop();
  }
  const first = stored();
  assertEquals(first.writers, [0, 0, 0, 0, 0, 0]);
  // Nothing is created when the node directory is there, even when a guest dir is not.
  d = await startDaemon(data.path, [], env);
  try {
    assert(!/created nodes/.test(d.stderr()), d.stderr());
    assert((await d.ops([["rmdir", d.p("nodes/pve1/openvz")]]))[0].ok);
  } finally {
    await d.stop();
  }
  assertEquals(stored().version, first.version + 1);
  Deno.writeTextFileSync(clock, "1700000999");
  d = await startDaemon(data.path, [], env);
  try {
    const [ls] = await d.ops([["readdir", d.p("nodes/pve1")]]);
    assertEquals(ls.value, ["lxc", "priv", "qemu-server"]);
  } finally {
    await d.stop();
  }
  assertEquals(stored().version, first.version + 1);
});

test("a database that cannot take nodes/<node> still starts, and says why", async () => {
  using data = dataDir();
  let d = await startDaemon(data.path, ["--nodename", "other"]);
  try {
    const r = await d.sh(`cd ${d.p("")} && rm -r nodes && echo file > nodes`);
    assertEquals(r.code, 0, r.stderr);
  } finally {
    await d.stop();
  }
  d = await startDaemon(data.path);
  try {
    const [local, nodes] = await d.ops([["readlink", d.p("local")], ["read", d.p("nodes")]]);
    assertEquals([local.value, nodes.value], ["nodes/pve1", "file\n"]);
    assert(
      /\[main\] err: cannot create nodes\/pve1 in the database \(ENOTDIR\)/.test(d.stderr()),
      d.stderr(),
    );
  } finally {
    await d.stop();
  }
});

test("-d and writing 1 to .debug switch debug lines on (with their source location)", async () => {
  await withDaemon((d) => {
    assert(/^\[main\] debug: configuration \{.*\(daemon\.ts:\d+\)$/m.test(d.stderr()), d.stderr());
    return Promise.resolve();
  }, ["-d"]);
  using data = dataDir();
  const d = await startDaemon(data.path);
  try {
    await d.ops([["write", d.p("x"), "x"]]);
    assert(!/debug/.test(d.stderr()), d.stderr());
    await d.sh(`echo 1 > ${d.p(".debug")}`);
    // A read through the page cache, then a change: a FUSE op, a commit, an invalidation.
    await d.sh(`cat ${d.p("x")} >/dev/null; echo y > ${d.p("x")}`);
  } finally {
    await d.stop();
  }
  const err = d.stderr();
  assert(/^\[main\] notice: debug logging switched on \(daemon\.ts:\d+\)$/m.test(err), err);
  assert(/^\[fuse\] debug: open \d+ \d+/m.test(err), err);
  assert(/^\[database\] debug: commit write x 0\+2 truncate: errno 0/m.test(err), err);
  assert(/^\[fuse\] debug: invalidate inode \d+/m.test(err), err);
  assert(/^\[main\] debug: signal received: unmounting \(daemon\.ts:\d+\)$/m.test(err), err);
});

test("without syslog the background daemon logs to <run-dir>/pmxcfs.log and says so", async () => {
  using data = dataDir();
  const D = data.path;
  const run = `${D}/run`;
  const start = `${CMD()} -d ${ARGS(daemonArgs(D, `${D}/mnt`))}`;
  const staleSocket =
    `${shq(Deno.execPath())} eval 'Deno.listen({ transport: "unix", path: "/dev/log" }); ` +
    `Deno.kill(Deno.pid, "SIGKILL")'`;
  const r = await nsScript(
    `${PRIVATE_DEV}
    ${WAIT_MOUNTED}
    ${start} 2>${shq(`${D}/start1`)}; echo "rc=$?"; waitm ${shq(`${D}/mnt`)}
    pid=$(cat ${shq(`${D}/pmxcfs.pid`)})
    echo 0 > ${shq(`${D}/mnt/.debug`)}; echo 1 > ${shq(`${D}/mnt/.debug`)}; stopd "$pid"
    ${staleSocket} 2>/dev/null; test -S /dev/log && echo stale-socket
    ${start} 2>${shq(`${D}/start2`)}; echo "rc=$?"; waitm ${shq(`${D}/mnt`)}
    stopd "$(cat ${shq(`${D}/pmxcfs.pid`)})"`,
  );
  assertEquals(r.stdout.trim().split("\n"), ["rc=0", "stale-socket", "rc=0"]);
  // The last line on stderr before the daemon detaches.
  const notice = (why: string) =>
    new RegExp(
      `\\n\\[main\\] notice: syslog is unreachable \\(/dev/log: ${why}\\): ` +
        `logging to ${run}/pmxcfs\\.log \\(daemon\\.ts:\\d+\\)\\n$`,
    );
  const start1 = Deno.readTextFileSync(`${D}/start1`);
  const start2 = Deno.readTextFileSync(`${D}/start2`);
  assert(notice("No such file or directory").test(start1), start1);
  assert(notice("Connection refused").test(start2), start2);
  const log = Deno.readTextFileSync(`${run}/pmxcfs.log`).split("\n");
  const has = (re: RegExp) => log.some((l) => re.test(l));
  assert(has(/^\S+Z pmxcfs\[\d+\]: \[main\] notice: syslog is unreachable/), log.join("\n"));
  assert(has(/\[main\] debug: configuration \{/), log.join("\n"));
  assert(has(/\[database\] debug: loaded /), log.join("\n"));
  assert(has(/\[main\] notice: debug logging switched off$/), log.join("\n"));
  assert(has(/\[main\] notice: debug logging switched on \(daemon\.ts:\d+\)$/), log.join("\n"));
  assert(has(/\[main\] debug: signal received: unmounting/), log.join("\n"));
  assertEquals(Deno.statSync(`${run}/pmxcfs.log`).mode! & 0o777, 0o640);
});

test("with syslog listening, the background daemon's lines (debug too) go there", async () => {
  using data = dataDir();
  const D = data.path;
  // A stream socket: glibc's syslog() falls back to it; messages end with a NUL byte.
  const listener = `${shq(Deno.execPath())} eval 'const f = Deno.openSync(Deno.args[0], ` +
    `{ append: true, create: true }); for await (const c of Deno.listen({ transport: "unix", ` +
    `path: "/dev/log" })) { (async () => { for await (const b of c.readable) f.writeSync(b); })(); }' ` +
    shq(`${D}/syslog`);
  const r = await nsScript(
    `${PRIVATE_DEV}
    ${WAIT_MOUNTED}
    ${listener} & l=$!
    for i in $(seq 200); do test -S /dev/log && break; sleep 0.05; done
    ${CMD()} -d ${ARGS(daemonArgs(D, `${D}/mnt`))}; echo "rc=$?"; waitm ${shq(`${D}/mnt`)}
    stopd "$(cat ${shq(`${D}/pmxcfs.pid`)})"; sleep 0.2; kill $l
    test -e ${shq(`${D}/run/pmxcfs.log`)} && echo log-file || echo no-log-file`,
  );
  assertEquals(r.stdout.trim().split("\n"), ["rc=0", "no-log-file"], r.stderr);
  // Lines of the start reach stderr before the daemon detaches, and syslog too.
  assert(/^\[main\] debug: configuration \{/m.test(r.stderr), r.stderr);
  const lines = Deno.readTextFileSync(`${D}/syslog`).split("\0");
  const has = (re: RegExp) => lines.some((l) => re.test(l));
  assert(has(/^<31>.* pmxcfs\[\d+\]: \[main\] debug: configuration \{/), lines.join("\n"));
  assert(has(/^<31>.* pmxcfs\[\d+\]: \[main\] debug: signal received/), lines.join("\n"));
  assert(has(/^<30>.* pmxcfs\[\d+\]: \[main\] info: unmounted, exiting/), lines.join("\n"));
});

test("a background start in a pipeline lets the reader finish (no descriptor of it is kept)", async () => {
  using data = dataDir();
  const D = data.path;
  const args = ["--mount", "mnt", "--data-dir", "data", "--run-dir", "run", "--nodename", "pve1"];
  // `install.sh | tail` must end: the daemon keeps no copy of the starter's stdout or stderr.
  const r = await nsScript(
    `mount -t proc proc /proc; ${WAIT_MOUNTED}
    cd ${shq(D)}
    { ${CMD()} ${ARGS([...args, "--corosync-conf", "none.conf"])} 2>&1; echo "started=$?"; } |
      { timeout 20 cat; echo "reader=$?"; }
    waitm mnt && echo mounted; stopd "$(cat run/pmxcfs.pid)"`,
  );
  const out = r.stdout.trim().split("\n").filter((l) => /^(started|reader)=|^mounted$/.test(l));
  assertEquals(out, ["started=0", "reader=0", "mounted"], r.stdout + r.stderr);
});

test("the background daemon runs in / with the relative paths it was given made absolute", async () => {
  using data = dataDir();
  const D = data.path;
  const rel = [
    "--mount",
    "mnt",
    "--data-dir",
    "data",
    "--run-dir",
    "run",
    "--pid-file",
    "./p.pid",
    "--nodename",
    "pve1",
    "--corosync-conf",
    "none.conf",
  ];
  const r = await nsScript(
    `mount -t proc proc /proc; ${WAIT_MOUNTED}
    cd ${shq(D)} && ${CMD()} ${ARGS(rel)} 2>/dev/null; echo "rc=$?"; waitm mnt && echo mounted
    pid=$(cat p.pid); readlink /proc/$pid/cwd
    test -f data/config.db && echo db; test -d run && echo run
    tr '\\0' '\\n' < /proc/$pid/cmdline | grep -A1 -x -- --mount | tail -1
    cd /; stopd "$pid"`,
  );
  assertEquals(
    r.stdout.trim().split("\n"),
    ["rc=0", "mounted", "/", "db", "run", `${D}/mnt`],
    r.stderr,
  );
});

Deno.test("command line: paths made absolute, pid file default, grouped flags, errors", async () => {
  const { parseCommandLine } = await import("../../src/daemon/config.ts");
  const env = { cwd: "/c", hostname: () => "host" };
  const cfg = (argv: string[]) => {
    const r = parseCommandLine(argv, env);
    if (r.kind !== "run") throw new Error(JSON.stringify(r));
    return r.cfg;
  };
  assertEquals(cfg([]).pidFile, "/run/pve-cluster.pid");
  assertEquals(cfg(["--run-dir", "/run/pve-cluster"]).pidFile, "/run/pve-cluster.pid");
  assertEquals(cfg(["--run-dir", "/x/run"]).pidFile, "/x/run/pmxcfs.pid");
  assertEquals(cfg(["--run-dir=r"]).pidFile, "/c/r/pmxcfs.pid");
  assertEquals(cfg(["--run-dir", "r", "--pid-file", "p"]).pidFile, "/c/p");
  assertEquals(cfg(["--mount", "../m", "--data-dir", "d/"]).mount, "/m");
  assertEquals(cfg(["--data-dir", "d/"]).dataDir, "/c/d");
  assertEquals(cfg([]).nodename, "host");
  const f = cfg(["-fdl"]);
  assertEquals([f.foreground, f.debug, f.local], [true, true, true]);
  const err = (argv: string[]) => {
    const r = parseCommandLine(argv, env);
    return r.kind === "error" ? [r.code, r.message] : r.kind;
  };
  assertEquals(err(["-x"]), [1, "pmxcfs: unknown option '-x' (see pmxcfs --help)"]);
  assertEquals(err(["--x"]), [1, "pmxcfs: unknown option '--x' (see pmxcfs --help)"]);
  assertEquals(err(["-f=1"]), [1, "pmxcfs: unknown option '-=' (see pmxcfs --help)"]);
  assertEquals(err(["--local=1"]), [
    1,
    "pmxcfs: option '--local' takes no value (see pmxcfs --help)",
  ]);
  assertEquals(err(["a"]), [255, "pmxcfs: too many arguments"]);
  assertEquals(err(["--", "-f"]), [255, "pmxcfs: too many arguments"]);
  assertEquals(err(["--nodename", "a_b"])[0], 255);
  assertEquals(err(["-h", "x"]), "help");
  assertEquals(parseCommandLine([], { cwd: "/", hostname: () => "" }).kind, "error");
});

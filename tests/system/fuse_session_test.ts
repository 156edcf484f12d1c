/**
 * System test of src/fuse/session.ts: a toy in-memory filesystem mounted in a private mount
 * namespace, exercised with real tools (ls, cat, stat, mv, rm, ...) through nsenter.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { type NsServer, shq, startInMountNamespace, systemTestSkipReason } from "./helpers.ts";

const skip = systemTestSkipReason();
if (skip) console.log(`fuse_session_test: skipped: ${skip}`);
const SERVER = new URL("./fixtures/toy_fs_server.ts", import.meta.url);

async function ok0(srv: NsServer, script: string): Promise<string> {
  const r = await srv.sh(script);
  strictEqual(r.code, 0, `\`${script}\` failed (${r.code}): ${r.stderr}\n${srv.stderr()}`);
  return r.stdout;
}

Deno.test({
  name: "fuse session: POSIX tools work on a toy filesystem, nothing leaks to the host",
  ignore: skip !== undefined,
  fn: async () => {
    await using srv = await startInMountNamespace({ script: SERVER, args: ["{mountpoint}"] });
    const m = shq(srv.mountpoint);

    // The mount exists only in the server's namespace.
    ok(!(await Deno.readTextFile("/proc/self/mountinfo")).includes(srv.mountpoint));
    ok((await ok0(srv, `grep ' ${srv.mountpoint} ' /proc/mounts`)).startsWith("toyfs "));

    // readdir + lookup + getattr
    deepStrictEqual(
      (await ok0(srv, `ls -a ${m}`)).trim().split("\n"),
      [".", "..", ".ctl", "dir", "hello.txt", "link", "slow"],
    );
    strictEqual(await ok0(srv, `cat ${m}/hello.txt`), "hello world\n");
    strictEqual(
      await ok0(srv, `stat -c '%s %a %h %F %i' ${m}/hello.txt`),
      "12 644 1 regular file 2\n",
    );
    strictEqual(await ok0(srv, `stat -c '%h %F' ${m}/dir`), "2 directory\n");
    strictEqual(await ok0(srv, `cat ${m}/dir/a.txt`), "A\n");

    // errno propagation
    const missing = await srv.sh(`cat ${m}/nope`);
    strictEqual(missing.code, 1);
    ok(missing.stderr.includes("No such file or directory"), missing.stderr);
    ok((await srv.sh(`rmdir ${m}/dir`)).stderr.includes("Directory not empty"));

    // readlink, symlink
    strictEqual(await ok0(srv, `readlink ${m}/link`), "hello.txt\n");
    strictEqual(await ok0(srv, `cat ${m}/link`), "hello world\n");
    strictEqual(await ok0(srv, `ln -s dir/a.txt ${m}/l2 && cat ${m}/l2`), "A\n");

    // create + write + release, mkdir, rename, unlink
    strictEqual(await ok0(srv, `echo abc > ${m}/new.txt && cat ${m}/new.txt`), "abc\n");
    await ok0(srv, `mkdir -m 700 ${m}/sub && mv ${m}/new.txt ${m}/sub/moved.txt`);
    strictEqual(await ok0(srv, `stat -c %a ${m}/sub`), "700\n");
    strictEqual(
      await ok0(srv, `cat ${m}/sub/moved.txt; test ! -e ${m}/new.txt && echo gone`),
      "abc\ngone\n",
    );
    await ok0(srv, `rm ${m}/sub/moved.txt && rmdir ${m}/sub`);
    strictEqual((await srv.sh(`ls ${m}/sub`)).code, 2);

    // setattr: truncate, chmod, chown, utimes
    strictEqual(await ok0(srv, `truncate -s 3 ${m}/hello.txt && cat ${m}/hello.txt`), "hel");
    await ok0(srv, `chmod 600 ${m}/hello.txt && chown 12:34 ${m}/hello.txt`);
    await ok0(srv, `touch -m -d @1000000 ${m}/hello.txt`);
    strictEqual(await ok0(srv, `stat -c '%a %u %g %Y' ${m}/hello.txt`), "600 12 34 1000000\n");

    // statfs
    strictEqual(await ok0(srv, `stat -f -c '%S %b %f %a %l' ${m}`), "4096 1000 900 800 255\n");

    // names are byte strings: a latin1 byte (0xe9) survives create/readdir/lookup
    await ok0(srv, `touch ${m}/"$(printf 'caf\\351')" && test -e ${m}/"$(printf 'caf\\351')"`);
    ok((await ok0(srv, `ls ${m} | od -An -c`)).includes("c   a   f 351"));

    // large write/read through several requests (max_write 128 KiB)
    await ok0(
      srv,
      `head -c 600000 /dev/urandom > ${shq(srv.dir)}/big && cp ${shq(srv.dir)}/big ${m}/big && ` +
        `cmp ${shq(srv.dir)}/big ${m}/big`,
    );

    // asynchronous replies (open and read of /slow answered from timers), concurrent with
    // other requests: the stat must not wait for the slow read.
    strictEqual(
      await ok0(
        srv,
        `cat ${m}/slow > ${shq(srv.dir)}/slow.out & stat -c %s ${m}/dir/a.txt; wait; cat ${
          shq(srv.dir)
        }/slow.out`,
      ),
      "2\nslow data\n",
    );

    // readdir across several replies (small buffer forces multiple readdir calls)
    await ok0(srv, `mkdir ${m}/many && for i in $(seq 1 300); do : > ${m}/many/file-$i; done`);
    strictEqual(await ok0(srv, `ls ${m}/many | wc -l`), "300\n");

    // external umount ends run(); the server exits 0 and reports its stats
    await ok0(srv, `umount ${m}`);
    const st = await srv.wait(5000);
    strictEqual(st.code, 0, srv.stderr());
    const stats = JSON.parse(srv.stdout().trim().split("\n").at(-1)!).stats;
    ok(stats.requests > 100, JSON.stringify(stats));
  },
});

Deno.test({
  name: "fuse session: kernel caches are invalidated by notifyInvalInode/notifyInvalEntry",
  ignore: skip !== undefined,
  fn: async () => {
    await using srv = await startInMountNamespace({
      script: SERVER,
      args: ["{mountpoint}", "--timeout=600"],
    });
    const m = shq(srv.mountpoint);
    strictEqual(await ok0(srv, `cat ${m}/hello.txt`), "hello world\n");
    // Changed server-side without a notification (same size, same mtime, so the kernel's
    // auto_inval_data does not notice): the kernel keeps serving its cached copy.
    await ok0(srv, `printf 'setq hello.txt HELLO WORLD\n' > ${m}/.ctl`);
    strictEqual(await ok0(srv, `cat ${m}/hello.txt`), "hello world\n");
    // The same with notify_inval_inode: the next read sees the new content.
    await ok0(srv, `printf 'set hello.txt NEW CONTENT' > ${m}/.ctl`);
    let got = "";
    for (let i = 0; i < 50 && got !== "NEW CONTENT"; i++) {
      got = await ok0(srv, `cat ${m}/hello.txt`);
      if (got !== "NEW CONTENT") await new Promise((r) => setTimeout(r, 20));
    }
    strictEqual(got, "NEW CONTENT");
    // Removed server-side + notify_inval_entry: the cached dentry must go.
    await ok0(srv, `test -e ${m}/link && printf 'drop link' > ${m}/.ctl`);
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = (await srv.sh(`test -e ${m}/link`)).code !== 0;
      if (!gone) await new Promise((r) => setTimeout(r, 20));
    }
    ok(gone, "dentry still cached after notifyInvalEntry");
  },
});

Deno.test({
  name: "fuse session: stop() (SIGTERM) ends run() promptly, fails pending requests with EIO",
  ignore: skip !== undefined,
  fn: async () => {
    const srv = await startInMountNamespace({
      script: SERVER,
      args: ["{mountpoint}", "--slow-ms=10000"],
    });
    try {
      strictEqual(await ok0(srv, `cat ${shq(srv.mountpoint)}/dir/a.txt`), "A\n");
      // A read the handler will only answer in 10 s is pending when the session stops.
      const pending = srv.sh(`cat ${shq(srv.mountpoint)}/slow`);
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      srv.kill("SIGTERM");
      const st = await srv.wait(5000);
      const ms = performance.now() - t0;
      strictEqual(st.code, 0, srv.stderr());
      ok(ms < 1500, `exit took ${ms} ms`);
      ok(srv.stdout().includes('"stats"'), srv.stdout());
      const cat = await pending;
      strictEqual(cat.code, 1);
      ok(cat.stderr.includes("Input/output error"), cat.stderr);
    } finally {
      await srv.stop();
    }
    // temp dir removed
    ok(!(await Deno.stat(srv.dir).then(() => true, () => false)));
  },
});

/** Started on the C daemon's config.db, the mount shows exactly what the C daemon showed. */
import { latin1Bytes } from "../../src/util/bytes.ts";
import { assertEquals } from "../unit/assert.ts";
import { C_MADE as FIXTURE, readManifest, sha256Hex } from "../unit/helpers.ts";
import { dataDir, startDaemon } from "./daemon_helpers.ts";
import { systemTestSkipReason } from "./helpers.ts";

const skip = systemTestSkipReason();

Deno.test({
  name: "c-made/config.db: the mount shows manifest.json, .version has version.json's keys",
  ignore: skip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    using data = dataDir();
    Deno.copyFileSync(`${FIXTURE}/config.db`, `${data.path}/config.db`);
    const manifest = readManifest();
    // Served as its own node (vm), so start-up creates no node directory in it.
    const d = await startDaemon(data.path, ["--nodename", "vm"]);
    try {
      const stats = await d.ops(manifest.map((m) => ["stat", d.p(m.path)]));
      const reads = await d.ops(
        manifest.filter((m) => m.type === "file").map((m) => ["read", d.p(m.path)]),
      );
      let r = 0;
      for (const [i, m] of manifest.entries()) {
        const s = stats[i].value;
        const isDir = (s.mode & 0o170000) === 0o040000;
        assertEquals(isDir ? "dir" : "file", m.type, m.path);
        assertEquals(`0o${(s.mode & 0o7777).toString(8)}`, m.mode, m.path);
        assertEquals(s.mtime, m.mtime, m.path);
        if (m.type === "file") {
          const text: string = reads[r++].value;
          const bytes = latin1Bytes(text);
          assertEquals([s.size, bytes.length], [m.size, m.size], m.path);
          assertEquals(await sha256Hex(bytes), m.sha256, m.path);
        }
      }
      // Nothing else is in the tree: walk it.
      const walk = await d.sh(`cd ${d.p("")} && find nodes priv firewall sdn *.cfg | sort`);
      assertEquals(walk.stdout.trim().split("\n"), manifest.map((m) => m.path).sort());
      const [version] = await d.ops([["read", d.p(".version")]]);
      const want = JSON.parse(Deno.readTextFileSync(`${FIXTURE}/version.json`));
      const got = JSON.parse(version.value);
      assertEquals(Object.keys(got), Object.keys(want));
      assertEquals(Object.keys(got.kvstore), ["vm"]);
    } finally {
      await d.stop();
    }
  },
});

/** Byte-exact generated files (spec 7.4, test cases 30, 33, 34, 57). */
import { assertEquals } from "./assert.ts";
import {
  clusterlogText,
  membersText,
  versionText,
  vmlistText,
} from "../../src/fs/function_files.ts";
import { Memdb } from "../../src/memdb/memdb.ts";
import { C_MADE, GUEST_DIRS, REPO_ROOT, T0 } from "./helpers.ts";

Deno.test("34: .vmlist with no VMs", () => {
  const m = Memdb.fresh(0);
  assertEquals(vmlistText(m.vmlist), `{\n"version": ${m.vmlist.version}\n\n}\n`);
});

Deno.test("30, 33: .vmlist lists registered guests and drops deleted ones", () => {
  const m = Memdb.fresh(0);
  for (const d of GUEST_DIRS) m.mkdir(d, T0);
  m.create("nodes/n1/qemu-server/100.conf", T0);
  m.create("nodes/n2/lxc/101.conf", T0);
  m.rename("nodes/n1/qemu-server/100.conf", "nodes/n2/qemu-server/100.conf", T0);
  const v100 = m.vmlist.vms.get(100)!.version;
  const v101 = m.vmlist.vms.get(101)!.version;
  assertEquals(
    vmlistText(m.vmlist),
    `{\n"version": ${m.vmlist.version},\n"ids": {\n` +
      `"101": { "node": "n2", "type": "lxc", "version": ${v101} },\n` +
      `"100": { "node": "n2", "type": "qemu", "version": ${v100} }}\n\n}\n`,
  );
  const before = m.vmlist.version;
  m.delete("nodes/n2/qemu-server/100.conf", T0);
  assertEquals(m.vmlist.version > before, true);
  assertEquals(vmlistText(m.vmlist).includes('"100"'), false);
});

Deno.test("57: .members in local mode", () => {
  assertEquals(membersText("pve1", 0), `{\n"nodename": "pve1",\n"version": 0\n}\n`);
});

Deno.test(".members with cluster information", () => {
  assertEquals(
    membersText("pve1", 5, {
      name: "prod",
      version: 3,
      quorate: true,
      nodes: [{ name: "pve1", id: 1, online: true, ip: "192.0.2.10" }, {
        name: "pve2",
        id: 2,
        online: false,
      }],
    }),
    `{\n"nodename": "pve1",\n"version": 5,\n` +
      `"cluster": { "name": "prod", "version": 3, "nodes": 2, "quorate": 1 },\n` +
      `"nodelist": {\n  "pve1": { "id": 1, "online": 1, "ip": "192.0.2.10"},\n` +
      `  "pve2": { "id": 2, "online": 0}\n  }\n}\n`,
  );
});

Deno.test(".version lists the 43 observed paths in order and the kvstore block", () => {
  const fixture = Deno.readTextFileSync(`${C_MADE}/version.json`);
  const m = Memdb.fresh(0);
  const text = versionText(1795560641, 0, 0, m.counters, [{ node: "vm", keys: [] }]);
  assertEquals(text, fixture);
  const two = versionText(1, 2, 3, m.counters, [
    { node: "a", keys: [["k1", 1], ["k2", 2]] },
    { node: "b", keys: [["k", 3]] },
  ]);
  assertEquals(
    two.endsWith(`"kvstore": {\n"a": {\n"k1": 1,\n"k2": 2}\n,\n"b": {\n"k": 3}\n}\n}\n`),
    true,
  );
});

Deno.test(".clusterlog, empty and with one entry", () => {
  assertEquals(clusterlogText([]), `{\n"data": [\n]\n}\n`);
  assertEquals(
    clusterlogText([{
      uid: 1,
      time: 1732000000,
      pri: 6,
      tag: "cluster",
      pid: 4242,
      node: "pve1",
      user: "root",
      msg: "starting cluster log",
    }]),
    `{\n"data": [\n{"uid": 1, "time": 1732000000, "pri": 6, "tag": "cluster", "pid": 4242, "node": "pve1", "user": "root", "msg": "starting cluster log"}\n]\n}\n`,
  );
});

Deno.test("the fixtures ship with the repository: no source reads a file outside it", () => {
  assertEquals(C_MADE.startsWith(`${REPO_ROOT}tests/fixtures/`), true, C_MADE);
  for (const f of ["config.db", "manifest.json", "version.json", "README.md"]) {
    assertEquals(Deno.statSync(`${C_MADE}/${f}`).isFile, true, f);
  }
  // Every `new URL("...", import.meta.url)` of the sources must stay inside the checkout.
  const outside: string[] = [];
  const scan = (p: string) => {
    for (
      const m of Deno.readTextFileSync(p).matchAll(
        /new URL\(\s*["'`]([^"'`]+)["'`],\s*import\.meta\.url/g,
      )
    ) {
      const target = new URL(m[1], `file://${p}`).pathname;
      if (!target.startsWith(REPO_ROOT)) outside.push(`${p.slice(REPO_ROOT.length)}: ${m[1]}`);
    }
  };
  const walk = (dir: string, deep: boolean) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isFile && e.name.endsWith(".ts")) scan(p);
      else if (e.isDirectory && deep && e.name !== "fixtures") walk(p, true);
    }
  };
  walk(REPO_ROOT.slice(0, -1), false);
  for (const d of ["src", "ffi", "tests", "bench"]) walk(`${REPO_ROOT}${d}`, true);
  assertEquals(outside, []);
});

/** Byte-exact content of the generated files `.version`, `.members`, `.vmlist`... (spec 7.4). */
import type { ChangeCounters } from "../memdb/counters.ts";
import type { VmList } from "../memdb/vmlist.ts";

/** `.version`: start time, cluster-info and VM-list versions, change counters, kv versions. */
export function versionText(
  starttime: number,
  clinfo: number,
  vmlist: number,
  counters: ChangeCounters,
  kvstore: { node: string; keys: [string, number][] }[],
): string {
  let s = `{\n"starttime": ${starttime},\n"clinfo": ${clinfo},\n"vmlist": ${vmlist},\n`;
  for (const [p, c] of counters.entries()) s += `"${p}": ${c},\n`;
  s += `"kvstore": {\n`;
  // Literal spec wording: entries joined by ",\n", then "}\n"; blocks joined by ",\n".
  s += kvstore.map(({ node, keys }) =>
    `"${node}": {\n` + keys.map(([k, v]) => `"${k}": ${v}`).join(",\n") + "}\n"
  ).join(",\n");
  return s + "}\n}\n";
}

export interface ClusterMember {
  name: string;
  id: number;
  online: boolean;
  ip?: string;
}

export interface ClusterInfo {
  name: string;
  version: number;
  quorate: boolean;
  nodes: ClusterMember[];
}

/** `.members`: the short form without cluster information (local mode). */
export function membersText(nodename: string, version: number, cluster?: ClusterInfo): string {
  if (!cluster) return `{\n"nodename": "${nodename}",\n"version": ${version}\n}\n`;
  const nodes = cluster.nodes.map((n) =>
    `  "${n.name}": { "id": ${n.id}, "online": ${n.online ? 1 : 0}` +
    (n.ip ? `, "ip": "${n.ip}"` : "") + "}"
  ).join(",\n");
  return `{\n"nodename": "${nodename}",\n"version": ${version},\n` +
    `"cluster": { "name": "${cluster.name}", "version": ${cluster.version}, ` +
    `"nodes": ${cluster.nodes.length}, "quorate": ${cluster.quorate ? 1 : 0} },\n` +
    `"nodelist": {\n${nodes}\n  }\n}\n`;
}

/** `.vmlist`: note the blank line before the closing brace. */
export function vmlistText(list: VmList): string {
  let s = `{\n"version": ${list.version}`;
  if (list.vms.size > 0) {
    s += `,\n"ids": {\n`;
    s += [...list.vms].map(([id, vm]) =>
      `"${id}": { "node": "${vm.node}", "type": "${vm.type}", "version": ${vm.version} }`
    ).join(",\n");
    s += "}";
  }
  return s + "\n\n}\n";
}

export interface ClusterLogEntry {
  uid: number;
  time: number;
  pri: number;
  tag: string;
  pid: number;
  node: string;
  user: string;
  msg: string;
}

/** `.clusterlog`: newest first, at most 50 entries. */
export function clusterlogText(entries: readonly ClusterLogEntry[]): string {
  const lines = entries.slice(0, 50).map((e) =>
    `{"uid": ${e.uid}, "time": ${e.time}, "pri": ${e.pri}, "tag": ${JSON.stringify(e.tag)}, ` +
    `"pid": ${e.pid}, "node": ${JSON.stringify(e.node)}, "user": ${JSON.stringify(e.user)}, ` +
    `"msg": ${JSON.stringify(e.msg)}}`
  );
  return `{\n"data": [\n${lines.join(",\n")}${lines.length ? "\n" : ""}]\n}\n`;
}

/** `.debug`: the debug switch. */
export function debugText(on: boolean): string {
  return on ? "1\n" : "0\n";
}

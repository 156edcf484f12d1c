/**
 * Data-driven cluster scenarios (etcd raft's `testdata/` style): a file is a sequence of
 * blocks, each a command line, `----`, and the expected output, ended by a blank line. Lines
 * starting with `#` (and blank lines) before a command are comments, kept by a rewrite.
 *
 * ```
 * # node 1 alone, then node 2 joins
 * add-nodes 2 seed=1 down=2
 * ----
 * ok
 *
 * write 1 nodes/n1/x "a"
 * ----
 * ok
 * ```
 *
 * Commands (node ids are 1-based; `nowait` on an operation queues it without running the bus:
 * its answer is printed by the command that runs the bus far enough, as `op #k ...: <errno>`):
 *
 * | command | does | prints |
 * | --- | --- | --- |
 * | `add-nodes N [seed=S] [down=I]` | a {@linkcode SimCluster} of N nodes; `down` nodes crash (node and corosync) before anything runs (with two or more, the first crash's ring change may order the other's join: prefer `crash` + `stabilize`) | `ok` |
 * | `write N path "data" [offset=K] [notrunc] [nowait]` | a WRITE (whole-file by default: offset 0, truncate) | `ok` or the errno name |
 * | `mkdir N path`, `create N path`, `rm N path`, `mv N from to`, `mtime N path T` | that op through node N's committer | as `write` |
 * | `partition 1 2 \| 3`, `heal` | network partition / healed | `ok` |
 * | `expected-votes V` | quorum's expected votes (`default`: all nodes; 1: two_node-like) | `ok` |
 * | `crash N [node]`, `restart N`, `stop-corosync N`, `start-corosync N` | faults; `restart` also starts a crashed node's corosync | `ok` |
 * | `stabilize` | runs until the bus is quiet | answered ops, then one `N: MODE` line per node |
 * | `run K` | at most K bus steps | answered ops |
 * | `run-until-log N "text"` | steps until node N logs a line containing text | the line |
 * | `run-until-mode N MODE` | steps until node N is in MODE | answered ops |
 * | `modes` | | one `N: MODE` line per node |
 * | `checksums` | | `N: <16 hex>` per node, then `equal` or `differ` |
 * | `check` | {@linkcode SimCluster.check} | `ok` or the problems |
 * | `log N` | | node N's log lines since the last `log N` |
 * | `cat N path`, `ls N dir` | | the content (JSON string), the names (`d name` / `f name size`) |
 *
 * {@linkcode runScenario} runs a file's text and returns it with the actual outputs (the
 * rewrite) and the first mismatch, if any.
 *
 * @module
 */
import { SimCluster } from "./cluster.ts";
import { Mode } from "../../src/dfsm/types.ts";
import { errnoName } from "../../src/util/errno.ts";
import type { Op } from "../../src/memdb/op.ts";
import { EntryType } from "../../src/memdb/entry.ts";

/** One block of a scenario file. */
export interface Block {
  /** Comment and blank lines before the command, as they are. */
  pre: string[];
  /** The command line. */
  command: string;
  /** 1-based line number of the command. */
  line: number;
  /** Expected output lines (without the terminating blank line). */
  expected: string[];
}

/** A parsed scenario file; `trailer`: comment lines after the last block. */
export interface Scenario {
  blocks: Block[];
  trailer: string[];
}

/**
 * Splits a command line into words: spaces separate, `"..."` is one word with JSON escapes
 * (`\n`, `\"`, `\\`, `\u0000`), `|` is a word of its own.
 */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === " " || c === "\t") {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === "\\" ? 2 : 1;
      if (j >= line.length) throw new Error(`unterminated string in: ${line}`);
      out.push(JSON.parse(line.slice(i, j + 1)));
      i = j + 1;
    } else if (c === "|") {
      out.push("|");
      i++;
    } else {
      let j = i;
      while (j < line.length && !' \t|"'.includes(line[j])) j++;
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

/** Parses a scenario file. Throws on a command without `----`. */
export function parseScenario(text: string, name = "scenario"): Scenario {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const blocks: Block[] = [];
  let pre: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i];
    if (l.trim() === "" || l.startsWith("#")) {
      pre.push(l);
      i++;
      continue;
    }
    if (lines[i + 1] !== "----") {
      throw new Error(`${name}:${i + 1}: command "${l}" is not followed by ----`);
    }
    const block: Block = { pre, command: l, line: i + 1, expected: [] };
    i += 2;
    while (i < lines.length && lines[i] !== "") block.expected.push(lines[i++]);
    if (i < lines.length) i++; // the blank line ending the block
    blocks.push(block);
    pre = [];
  }
  return { blocks, trailer: pre };
}

/** The file text of a scenario with these outputs (one per block, in order). */
export function formatScenario(s: Scenario, outputs: readonly string[][]): string {
  let out = "";
  s.blocks.forEach((b, k) => {
    for (const p of b.pre) out += p + "\n";
    out += `${b.command}\n----\n`;
    for (const l of outputs[k]) out += l + "\n";
    out += "\n";
  });
  for (const p of s.trailer) out += p + "\n";
  return out.replace(/\n\n+$/, "\n");
}

/** The first block whose output differs. */
export interface Mismatch {
  line: number;
  command: string;
  expected: string[];
  actual: string[];
}

/** What {@linkcode runScenario} returns. */
export interface ScenarioResult {
  /** The file text with the actual outputs (what a rewrite writes). */
  rewritten: string;
  /** The first differing block (all blocks run even after it, for the rewrite). */
  mismatch?: Mismatch;
}

/**
 * Runs a scenario's text with `exec` (one call per block, in order; the state lives in the
 * executor) and compares the outputs. An exception in a command becomes its output
 * (`error: ...`), so a rewrite records it and the comparison fails on it.
 */
export function runScenario(
  text: string,
  exec: (words: string[], line: string) => string[],
  name = "scenario",
): ScenarioResult {
  const s = parseScenario(text, name);
  const outputs: string[][] = [];
  let mismatch: Mismatch | undefined;
  for (const b of s.blocks) {
    let actual: string[];
    try {
      actual = exec(tokenize(b.command), b.command);
    } catch (e) {
      actual = [`error: ${(e as Error).message}`];
    }
    // a blank line would end the block: outputs never contain one
    actual = actual.map((l) => (l === "" ? "<blank>" : l));
    outputs.push(actual);
    if (!mismatch && actual.join("\n") !== b.expected.join("\n")) {
      mismatch = { line: b.line, command: b.command, expected: b.expected, actual };
    }
  }
  return { rewritten: formatScenario(s, outputs), mismatch };
}

const MODE_NAMES: Record<number, string> = {
  [Mode.START]: "START",
  [Mode.START_SYNC]: "START_SYNC",
  [Mode.SYNCED]: "SYNCED",
  [Mode.UPDATE]: "UPDATE",
  [Mode.LEAVE]: "LEAVE",
  [Mode.VERSION_ERROR]: "VERSION_ERROR",
  [Mode.ERROR]: "ERROR",
};

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Pending {
  k: number;
  what: string;
  r: { errno?: number };
  printed: boolean;
}

/** Executes scenario commands over a {@linkcode SimCluster}. Dispose it to remove the databases. */
export class ClusterScenario {
  cluster?: SimCluster;
  private logPos = new Map<number, number>();
  private pending: Pending[] = [];
  private opSeq = 0;
  /** Steps a `run-until-*` command may take. */
  maxSteps = 1_000_000;

  private get c(): SimCluster {
    if (!this.cluster) throw new Error("no cluster: add-nodes first");
    return this.cluster;
  }

  /** Runs one command; returns its output lines. */
  exec(words: string[]): string[] {
    const [cmd, ...rest] = words;
    const flags = new Set(rest.filter((w) => /^[a-z]+$/.test(w) && !/^\d/.test(w)));
    const kv = new Map<string, string>();
    for (const w of rest) {
      const m = /^([a-z]+)=(.*)$/.exec(w);
      if (m) kv.set(m[1], m[2]);
    }
    const args = rest.filter((w) => !/^[a-z]+=/.test(w));
    const id = (i: number) => {
      const n = Number(args[i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`bad node id ${args[i]}`);
      return n;
    };
    switch (cmd) {
      case "add-nodes": {
        this.close();
        const n = Number(args[0]);
        this.cluster = new SimCluster({ seed: Number(kv.get("seed") ?? 1), nodes: n });
        for (const d of (kv.get("down") ?? "").split(",").filter(Boolean)) {
          this.cluster.crash(Number(d), { node: true });
        }
        return ["ok"];
      }
      case "write": {
        const path = args[1];
        const data = enc.encode(args[2] ?? "");
        const offset = Number(kv.get("offset") ?? 0);
        const op: Op = { type: "write", path, offset, data, truncate: !flags.has("notrunc") };
        return this.op(id(0), op, flags.has("nowait"), `write ${args[0]} ${path}`);
      }
      case "mkdir":
      case "create":
      case "rm": {
        const type = cmd === "rm" ? "delete" : cmd;
        const op = { type, path: args[1] } as Op;
        return this.op(id(0), op, flags.has("nowait"), `${cmd} ${args[0]} ${args[1]}`);
      }
      case "mv":
        return this.op(
          id(0),
          { type: "rename", path: args[1], to: args[2] },
          flags.has("nowait"),
          `mv ${args[0]} ${args[1]} ${args[2]}`,
        );
      case "mtime":
        return this.op(
          id(0),
          { type: "mtime", path: args[1], mtime: Number(args[2]) },
          flags.has("nowait"),
          `mtime ${args[0]} ${args[1]}`,
        );
      case "partition": {
        const sets: number[][] = [[]];
        for (const w of args) {
          if (w === "|") sets.push([]);
          else sets[sets.length - 1].push(Number(w));
        }
        this.c.partition(sets);
        return ["ok"];
      }
      case "heal":
        this.c.heal();
        return ["ok"];
      case "expected-votes":
        this.c.setExpectedVotes(args[0] === "default" ? undefined : Number(args[0]));
        return ["ok"];
      case "crash":
        this.c.crash(id(0), { node: flags.has("node") });
        return ["ok"];
      case "restart": {
        const n = id(0);
        this.c.restart(n, { corosync: !this.c.bus.corosyncUp(n) });
        return ["ok"];
      }
      case "stop-corosync":
        this.c.stopCorosync(id(0));
        return ["ok"];
      case "start-corosync":
        this.c.startCorosync(id(0));
        return ["ok"];
      case "stabilize":
        this.c.runUntilQuiet();
        return [...this.answered(), ...this.modes()];
      case "run":
        this.c.run(Number(args[0]));
        return this.answered();
      case "run-until-log": {
        const n = id(0);
        const text = args[1];
        const logs = this.c.logs(n);
        const from = logs.length;
        for (let s = 0; s < this.maxSteps; s++) {
          const hit = logs.slice(from).find((l) => l.includes(text));
          if (hit) return [...this.answered(), hit];
          if (!this.c.bus.step()) break;
        }
        throw new Error(`node ${n} never logged "${text}"`);
      }
      case "run-until-mode": {
        const n = id(0);
        const want = args[1];
        for (let s = 0; s < this.maxSteps; s++) {
          if (MODE_NAMES[this.c.node(n).mode] === want) return this.answered();
          if (!this.c.bus.step()) break;
        }
        throw new Error(`node ${n} never reached ${want}`);
      }
      case "modes":
        return this.modes();
      case "checksums": {
        const sums = this.c.checksums();
        const out = this.c.nodes.map((n) =>
          `${n.id}: ${sums.has(n.id) ? sums.get(n.id)!.slice(0, 16) : "(stopped)"}`
        );
        out.push(new Set(sums.values()).size <= 1 ? "equal" : "differ");
        return out;
      }
      case "check": {
        const p = this.c.check();
        return p.length ? p : ["ok"];
      }
      case "log": {
        const n = id(0);
        const logs = this.c.logs(n);
        const from = this.logPos.get(n) ?? 0;
        this.logPos.set(n, logs.length);
        return logs.slice(from);
      }
      case "cat": {
        const n = this.c.node(id(0));
        if (!n.alive) return ["(stopped)"];
        const r = n.db.memdb.read(args[1]);
        return [typeof r === "number" ? errnoName(r) : JSON.stringify(dec.decode(r))];
      }
      case "ls": {
        const n = this.c.node(id(0));
        if (!n.alive) return ["(stopped)"];
        const dir = args[1] ?? "";
        const e = dir === "" || dir === "/" ? n.db.memdb.root : n.db.memdb.lookup(dir);
        if (!e) return ["ENOENT"];
        if (!e.children) return ["ENOTDIR"];
        return [...e.children.values()]
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map((c) =>
            c.type === EntryType.Dir ? `d ${c.name}` : `f ${c.name} ${c.data?.length ?? 0}`
          );
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }

  private op(n: number, op: Op, nowait: boolean, what: string): string[] {
    if (nowait) {
      const k = ++this.opSeq;
      this.pending.push({ k, what, r: this.c.op(n, op), printed: false });
      return [...this.answered(), `op #${k} queued`];
    }
    const r = this.c.op(n, op);
    this.c.runUntilQuiet();
    return [...this.answered(), r.errno === undefined ? "no answer" : errnoText(r.errno)];
  }

  /** Lines for queued ops answered since they were last looked at. */
  private answered(): string[] {
    const out: string[] = [];
    for (const p of this.pending) {
      if (!p.printed && p.r.errno !== undefined) {
        p.printed = true;
        out.push(`op #${p.k} ${p.what}: ${errnoText(p.r.errno)}`);
      }
    }
    this.pending = this.pending.filter((p) => !p.printed);
    return out;
  }

  private modes(): string[] {
    return this.c.nodes.map((n) =>
      `${n.id}: ${n.alive ? MODE_NAMES[n.mode] ?? n.mode : "(stopped)"}`
    );
  }

  /** Removes the cluster's databases. */
  close(): void {
    this.cluster?.close();
    this.cluster = undefined;
    this.logPos.clear();
    this.pending = [];
    this.opSeq = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function errnoText(errno: number): string {
  if (errno === 0) return "ok";
  return errnoName(Math.abs(errno));
}

/** Runs a scenario text over a fresh {@linkcode ClusterScenario}. */
export function runClusterScenario(text: string, name?: string): ScenarioResult {
  using s = new ClusterScenario();
  return runScenario(text, (w) => s.exec(w), name);
}

/**
 * The data-driven cluster scenarios: every `testdata/*.txt` runs over a fresh
 * {@linkcode ClusterScenario}; `REWRITE=1 deno test -A tests/sim/scenario_test.ts` writes the
 * actual outputs back into the files (then review the diff). Also the parser and the rewrite
 * machinery, with a fake executor.
 */
import { assert, assertEquals } from "../unit/assert.ts";
import {
  formatScenario,
  parseScenario,
  runClusterScenario,
  runScenario,
  tokenize,
} from "./scenario.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const REWRITE = Deno.env.get("REWRITE") === "1";

Deno.test("scenario: tokenize splits words, quoted JSON strings and the partition bar", () => {
  assertEquals(tokenize(`write 1 nodes/n1/x "a b\\n\\"c\\""`), [
    "write",
    "1",
    "nodes/n1/x",
    'a b\n"c"',
  ]);
  assertEquals(tokenize("partition 1 2|3"), ["partition", "1", "2", "|", "3"]);
  assertEquals(tokenize("  add-nodes 3   seed=7 "), ["add-nodes", "3", "seed=7"]);
  assertEquals(tokenize(`write 1 x ""`), ["write", "1", "x", ""]);
});

const SAMPLE = `# a comment
add-nodes 2
----
ok

# two lines of output
echo a b
----
a
b

# empty output
echo
----

# trailing comment
`;

Deno.test("scenario: parse keeps comments, commands, line numbers and expected lines", () => {
  const s = parseScenario(SAMPLE);
  assertEquals(s.blocks.map((b) => [b.line, b.command, b.expected]), [
    [2, "add-nodes 2", ["ok"]],
    [7, "echo a b", ["a", "b"]],
    [13, "echo", []],
  ]);
  assertEquals(s.blocks[1].pre, ["# two lines of output"]);
  assertEquals(s.trailer, ["# trailing comment"]);
  // formatting with the expected outputs gives the file back
  assertEquals(formatScenario(s, s.blocks.map((b) => b.expected)), SAMPLE);
});

Deno.test("scenario: a command without ---- is an error naming the line", () => {
  let msg = "";
  try {
    parseScenario("add-nodes 2\nok\n", "f.txt");
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(msg, 'f.txt:1: command "add-nodes 2" is not followed by ----');
});

const echo = (w: string[]) => (w[0] === "add-nodes" ? ["ok"] : w.slice(1));

Deno.test("scenario: run compares outputs and reports the first mismatch; the rewrite fixes it", () => {
  assertEquals(runScenario(SAMPLE, echo).mismatch, undefined);
  const wrong = SAMPLE.replace("a\nb\n", "a\nB\n");
  const r = runScenario(wrong, echo, "w.txt");
  assertEquals(r.mismatch, {
    line: 7,
    command: "echo a b",
    expected: ["a", "B"],
    actual: ["a", "b"],
  });
  assertEquals(r.rewritten, SAMPLE);
  // an exception is the block's output; blank output lines are made visible
  const r2 = runScenario('boom\n----\n\necho ""\n----\n\n', (w) => {
    if (w[0] === "boom") throw new Error("bang");
    return [""];
  });
  assertEquals(r2.rewritten, 'boom\n----\nerror: bang\n\necho ""\n----\n<blank>\n');
  assert(r2.mismatch);
});

const files = [...Deno.readDirSync(TESTDATA)]
  .filter((e) => e.isFile && e.name.endsWith(".txt"))
  .map((e) => e.name)
  .sort();

for (const name of files) {
  Deno.test(`scenario ${name}`, () => {
    const url = new URL(name, TESTDATA);
    const text = Deno.readTextFileSync(url);
    const r = runClusterScenario(text, name);
    if (REWRITE) {
      if (r.rewritten !== text) Deno.writeTextFileSync(url, r.rewritten);
      return;
    }
    if (r.mismatch) {
      const m = r.mismatch;
      throw new Error(
        `tests/sim/testdata/${name}:${m.line}: ${m.command}\n` +
          `--- expected\n${m.expected.join("\n")}\n+++ actual\n${m.actual.join("\n")}\n` +
          `(REWRITE=1 deno test -A tests/sim/scenario_test.ts rewrites the expectations)`,
      );
    }
  });
}

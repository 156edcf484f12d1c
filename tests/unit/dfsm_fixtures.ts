/** The captured C traffic (tests/fixtures/c-wire/nodeN-mcast.log) as DFSM messages. */
const DIR = new URL("../fixtures/c-wire/", import.meta.url);

/** Which group a capture handle carries (see the fixture README). */
export const GROUP_OF_HANDLE: Record<string, "dcdb" | "kvstore"> = {
  "46e87ccd00000000": "dcdb",
  "507ed7ab00000001": "kvstore",
};

export interface CaptureLine {
  node: 1 | 2;
  line: number;
  time: number;
  handle: string;
  group: "dcdb" | "kvstore";
  rc: number;
  bytes: Uint8Array;
}

function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Every line of nodeN-mcast.log. */
export function readCapture(node: 1 | 2): CaptureLine[] {
  const text = Deno.readTextFileSync(new URL(`node${node}-mcast.log`, DIR));
  return text.split("\n").filter((l) => l.trim()).map((l, i) => {
    const [time, h, rc, hex] = l.trim().split(/\s+/);
    const handle = h.slice(2);
    return {
      node,
      line: i + 1,
      time: Number(time),
      handle,
      group: GROUP_OF_HANDLE[handle],
      rc: Number(rc.slice(3)),
      bytes: fromHex(hex),
    };
  });
}

/** All lines of both nodes. */
export function allCaptureLines(): CaptureLine[] {
  return [...readCapture(1), ...readCapture(2)];
}

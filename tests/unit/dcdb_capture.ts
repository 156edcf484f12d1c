/** The database-group lines of the C capture (tests/fixtures/c-wire), split into header and payload. */

export const C_WIRE = new URL("../fixtures/c-wire/", import.meta.url).pathname;

/** One DFSM message of the database group (protocol version 1). */
export interface CaptureMsg {
  node: 1 | 2;
  line: number;
  time: number;
  type: number;
  subtype: number;
  /** Header time (sender's clock). */
  hdrTime: number;
  /** NORMAL: the count; state messages: undefined. */
  count?: number;
  /** Bytes after the 24-byte (NORMAL) or 32-byte header. */
  payload: Uint8Array;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Every database-group message of `nodeN-mcast.log`, in file order. */
export function captureLines(node: 1 | 2): CaptureMsg[] {
  const text = Deno.readTextFileSync(`${C_WIRE}node${node}-mcast.log`);
  const out: CaptureMsg[] = [];
  text.split("\n").forEach((l, i) => {
    if (!l.trim()) return;
    const [time, , , hex] = l.split(" ");
    const b = fromHex(hex);
    const dv = new DataView(b.buffer);
    if (dv.getUint32(4, true) !== 1) return; // kvstore (protocol version 0)
    const type = dv.getUint16(0, true);
    const normal = type === 0;
    out.push({
      node,
      line: i + 1,
      time: Number(time),
      type,
      subtype: dv.getUint16(2, true),
      hdrTime: dv.getUint32(8, true),
      count: normal ? dv.getUint32(16, true) : undefined,
      payload: b.subarray(normal ? 24 : 32),
    });
  });
  return out;
}

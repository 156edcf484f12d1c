/**
 * DFSM wire format (cluster spec section 3): the 16-byte base header, the 24-byte NORMAL header
 * (count u64), the 32-byte state header (epoch), the seven message types and the
 * VERIFY_REQUEST / VERIFY payloads. All integers little-endian. Decoding never throws: it returns
 * a typed error, checked in the order of spec 3.5.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage, MsgType } from "./codec.ts";
 * const bytes = encodeMessage({
 *   type: MsgType.SYNC_START, subtype: 0, version: 1, time: 1795561396, reserved: 0,
 *   epoch: { counter: 2, time: 1795561396, nodeid: 1, pid: 10701 }, payload: new Uint8Array(),
 * });
 * const r = decodeMessage(bytes, 1); // { ok: true, msg: { type: 1, ... } }
 * ```
 * @module
 */

/** Message types (3.4). */
export const MsgType = {
  NORMAL: 0,
  SYNC_START: 1,
  STATE: 2,
  UPDATE: 3,
  UPDATE_COMPLETE: 4,
  VERIFY_REQUEST: 5,
  VERIFY: 6,
} as const;

/** Names of the message types, for logs and tests. */
export const MSG_TYPE_NAMES = [
  "NORMAL",
  "SYNC_START",
  "STATE",
  "UPDATE",
  "UPDATE_COMPLETE",
  "VERIFY_REQUEST",
  "VERIFY",
] as const;

export const BASE_HEADER_SIZE = 16;
export const NORMAL_HEADER_SIZE = 24;
export const STATE_HEADER_SIZE = 32;
export const VERIFY_REQUEST_PAYLOAD_SIZE = 8;
export const VERIFY_PAYLOAD_SIZE = 40;
export const CHECKSUM_SIZE = 32;

/** An epoch (3.3): creator's confchg counter, time, nodeid, pid. */
export interface Epoch {
  counter: number;
  time: number;
  nodeid: number;
  pid: number;
}

interface Base {
  /** Application subtype (NORMAL); 0 on state messages (not checked by receivers). */
  subtype: number;
  version: number;
  time: number;
  /** Always 0 when we send; carried as is for byte-exact re-encoding. */
  reserved: number;
  /** The bytes after the header (a view into the decoded buffer). */
  payload: Uint8Array;
}

/** A NORMAL message. `count` is a u64 read as a number (exact below 2^53). */
export interface NormalMessage extends Base {
  type: 0;
  count: number;
}

/** Any other type (1..6, or an unknown value above 6: the core decides). */
export interface StateMessage extends Base {
  type: number;
  epoch: Epoch;
}

export type DfsmMessage = NormalMessage | StateMessage;

/** Why a message could not be decoded (3.5 steps 3-7). */
export type DecodeError =
  | { kind: "short"; length: number }
  | { kind: "newerProtocol"; version: number }
  | { kind: "olderProtocol"; version: number }
  | { kind: "shortNormal"; length: number }
  | { kind: "shortState"; length: number };

export type DecodeResult = { ok: true; msg: DfsmMessage } | { ok: false; error: DecodeError };

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * 0x1_0000_0000 + dv.getUint32(at, true);
}

function putU64(dv: DataView, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  dv.setUint32(at, v - hi * 0x1_0000_0000, true);
  dv.setUint32(at + 4, hi >>> 0, true);
}

/** True for NORMAL; narrows the union. */
export function isNormal(m: DfsmMessage): m is NormalMessage {
  return m.type === MsgType.NORMAL;
}

/**
 * Decodes one delivered payload. With `ownVersion`, the protocol checks of 3.5 steps 4-5 are
 * applied (newer, older); without it any version is accepted (tests, decoders).
 */
export function decodeMessage(bytes: Uint8Array, ownVersion?: number): DecodeResult {
  if (bytes.length < BASE_HEADER_SIZE) {
    return { ok: false, error: { kind: "short", length: bytes.length } };
  }
  const dv = view(bytes);
  const type = dv.getUint16(0, true);
  const subtype = dv.getUint16(2, true);
  const version = dv.getUint32(4, true);
  const time = dv.getUint32(8, true);
  const reserved = dv.getUint32(12, true);
  if (ownVersion !== undefined) {
    if (version > ownVersion) return { ok: false, error: { kind: "newerProtocol", version } };
    if (version < ownVersion) return { ok: false, error: { kind: "olderProtocol", version } };
  }
  if (type === MsgType.NORMAL) {
    if (bytes.length < NORMAL_HEADER_SIZE) {
      return { ok: false, error: { kind: "shortNormal", length: bytes.length } };
    }
    return {
      ok: true,
      msg: {
        type: 0,
        subtype,
        version,
        time,
        reserved,
        count: u64(dv, 16),
        payload: bytes.subarray(NORMAL_HEADER_SIZE),
      },
    };
  }
  if (bytes.length < STATE_HEADER_SIZE) {
    return { ok: false, error: { kind: "shortState", length: bytes.length } };
  }
  return {
    ok: true,
    msg: {
      type,
      subtype,
      version,
      time,
      reserved,
      epoch: decodeEpoch(bytes, 16),
      payload: bytes.subarray(STATE_HEADER_SIZE),
    },
  };
}

/** The epoch at `at` (16 bytes). */
export function decodeEpoch(bytes: Uint8Array, at = 16): Epoch {
  const dv = view(bytes);
  return {
    counter: dv.getUint32(at, true),
    time: dv.getUint32(at + 4, true),
    nodeid: dv.getUint32(at + 8, true),
    pid: dv.getUint32(at + 12, true),
  };
}

/** Encodes any message; `payload` is copied as is. */
export function encodeMessage(m: DfsmMessage): Uint8Array<ArrayBuffer> {
  const hs = m.type === MsgType.NORMAL ? NORMAL_HEADER_SIZE : STATE_HEADER_SIZE;
  const out = new Uint8Array(hs + m.payload.length);
  const dv = view(out);
  dv.setUint16(0, m.type, true);
  dv.setUint16(2, m.subtype, true);
  dv.setUint32(4, m.version >>> 0, true);
  dv.setUint32(8, m.time >>> 0, true);
  dv.setUint32(12, m.reserved >>> 0, true);
  if (isNormal(m)) {
    putU64(dv, 16, m.count);
  } else {
    const e = (m as StateMessage).epoch;
    dv.setUint32(16, e.counter >>> 0, true);
    dv.setUint32(20, e.time >>> 0, true);
    dv.setUint32(24, e.nodeid >>> 0, true);
    dv.setUint32(28, e.pid >>> 0, true);
  }
  out.set(m.payload, hs);
  return out;
}

/** A NORMAL message as we send it (reserved 0). */
export function encodeNormal(
  subtype: number,
  version: number,
  time: number,
  count: number,
  payload: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return encodeMessage({ type: 0, subtype, version, time, reserved: 0, count, payload });
}

/** A state message (types 1..6) as we send it (subtype 0, reserved 0). */
export function encodeState(
  type: number,
  version: number,
  time: number,
  epoch: Epoch,
  payload: Uint8Array = new Uint8Array(),
): Uint8Array<ArrayBuffer> {
  return encodeMessage({ type, subtype: 0, version, time, reserved: 0, epoch, payload });
}

/** VERIFY_REQUEST payload: u64 csum_id. */
export function encodeVerifyRequestPayload(csumId: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(VERIFY_REQUEST_PAYLOAD_SIZE);
  view(out).setBigUint64(0, BigInt.asUintN(64, csumId), true);
  return out;
}

/** VERIFY payload: u64 csum_id, 32-byte checksum. */
export function encodeVerifyPayload(csumId: bigint, checksum: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(VERIFY_PAYLOAD_SIZE);
  view(out).setBigUint64(0, BigInt.asUintN(64, csumId), true);
  out.set(checksum.subarray(0, CHECKSUM_SIZE), 8);
  return out;
}

/** csum_id of a VERIFY_REQUEST payload; undefined unless exactly 8 bytes. */
export function decodeVerifyRequestPayload(p: Uint8Array): bigint | undefined {
  if (p.length !== VERIFY_REQUEST_PAYLOAD_SIZE) return undefined;
  return view(p).getBigUint64(0, true);
}

/** csum_id and checksum of a VERIFY payload; undefined unless exactly 40 bytes. */
export function decodeVerifyPayload(
  p: Uint8Array,
): { csumId: bigint; checksum: Uint8Array } | undefined {
  if (p.length !== VERIFY_PAYLOAD_SIZE) return undefined;
  return { csumId: view(p).getBigUint64(0, true), checksum: p.slice(8, 40) };
}

/** Equality of two epochs (the 16 wire bytes). */
export function epochEquals(a: Epoch, b: Epoch): boolean {
  return a.counter === b.counter && a.time === b.time && a.nodeid === b.nodeid &&
    a.pid === b.pid;
}

/** `<nodeid>/<pid>/<counter as %08X>` as the daemon logs epochs (3.3). */
export function formatEpoch(e: Epoch): string {
  return `${e.nodeid}/${e.pid}/${hex(e.counter, 8)}`;
}

/** Upper-case hex, zero padded to `width` digits. */
export function hex(v: number | bigint, width: number): string {
  return v.toString(16).toUpperCase().padStart(width, "0");
}

/** The CPG group name as joined: the name bytes plus the terminating NUL (2.2). */
export function groupNameBytes(name: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(name + "\0");
}

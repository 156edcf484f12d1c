/**
 * The DFSM message queues (cluster spec 4.5, 4.8): the msg_queue ordered by per-sender count
 * (Quirk C3: ties keep arrival order; plain numeric comparison instead of C's truncated
 * difference, identical below 2^31) and the FIFO sync_queue.
 *
 * @example
 * ```ts
 * import { insertByCount, type Queued } from "./queue.ts";
 * const q: Queued[] = [];
 * // insertByCount(q, entry) keeps q sorted by entry.msg.count, equal counts after existing ones
 * ```
 * @module
 */
import type { NormalMessage } from "./codec.ts";
import type { MemberId } from "./types.ts";

/** A queued NORMAL message: the whole message (header included) as delivered. */
export interface Queued {
  from: MemberId;
  /** A private copy of the delivered bytes (resent byte-identically, 4.3 step 9). */
  bytes: Uint8Array;
  /** Decoded from `bytes` (payload is a view into it). */
  msg: NormalMessage;
}

/** Inserts `q` into `queue` ordered by count ascending; an equal count goes after existing ones. */
export function insertByCount(queue: Queued[], q: Queued): void {
  let i = queue.length;
  while (i > 0 && queue[i - 1].msg.count > q.msg.count) i--;
  queue.splice(i, 0, q);
}

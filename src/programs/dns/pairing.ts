/**
 * Pairs each DNS query a socket sent with the answer it received: by the socket (its cookie),
 * the message id and the question, so two queries glibc sends at once on one socket (A and AAAA,
 * with `sendmmsg`) stay two. A query with no answer within the timeout ends as a timeout; a
 * query sent again before its answer (a retry) counts as another attempt of the same query.
 * DNS over TCP: each segment's data is read as 2-byte length prefixes and messages, in the
 * common case of whole messages per segment; a prefix sent alone, and the rest of a message that
 * goes on in later segments, are followed per stream. Whatever cannot be read is counted.
 *
 * @module
 */

import { isAnswerRcode } from "./codes.ts";
import { type DnsMessage, MalformedMessage, parseMessage } from "./wire.ts";

/** Transport protocol numbers. */
export const UDP = 17, TCP = 6;

/** Queries waiting for an answer at most; past that the oldest is dropped (and counted). */
export const MAX_PENDING = 65536;
/** TCP streams whose state between segments is kept at most. */
const MAX_STREAMS = 4096;

/**
 * What the kernel saw of one packet (fields of `struct dns_event`). The pairing keeps nothing of
 * it past {@linkcode Pairing.packet}: a caller may reuse one object for every packet.
 */
export interface Packet {
  /** CLOCK_BOOTTIME, ns. */
  tsNs: number;
  /** The socket's cookie (a counter of the kernel's: exact as a double). */
  socket: number;
  /** 0: sent to a DNS port, 1: received from one. */
  direction: number;
  /** {@linkcode UDP} or {@linkcode TCP}. */
  transport: number;
  /** 4 or 6. */
  family: number;
  /** Where the source and destination addresses (16 bytes each) are in `bytes`. */
  saddrAt: number;
  daddrAt: number;
  sport: number;
  dport: number;
  owner: Owner;
  /** The payload copied: `bytes[start, start + copied)` of a payload of `len` bytes. */
  bytes: Uint8Array;
  start: number;
  copied: number;
  len: number;
}

/**
 * 16 address bytes as 4 little-endian words: copied out of the ring without a typed array
 * allocation per packet (those cost more than the rest of a packet's pairing).
 */
export type Address = readonly [number, number, number, number];

/** The address at `bytes[at, at + 16)`. */
export function addressAt(bytes: Uint8Array, at: number): Address {
  const w = (i: number) =>
    (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0;
  return [w(at), w(at + 4), w(at + 8), w(at + 12)];
}

/** Writes an address back as its 16 bytes at `out[at]`. */
export function writeAddress(address: Address, out: Uint8Array, at: number): void {
  for (let k = 0; k < 4; k++) {
    const w = address[k];
    out[at + 4 * k] = w & 0xff;
    out[at + 4 * k + 1] = (w >>> 8) & 0xff;
    out[at + 4 * k + 2] = (w >>> 16) & 0xff;
    out[at + 4 * k + 3] = w >>> 24;
  }
}

/** Who sent the query. */
export interface Owner {
  known: boolean;
  pid: number;
  tid: number;
  uid: number;
  cgroupId: number;
  netns: number;
  /** The command, as the caller keeps it (an interned id). */
  comm: number;
}

/** A query waiting for its answer, then in the outcome. */
export interface Query {
  /** When it was first sent (CLOCK_BOOTTIME ns). */
  tsNs: number;
  /** When it times out. */
  deadlineNs: number;
  socket: number;
  id: number;
  name: string;
  type: number;
  transport: number;
  family: number;
  /** Where it was sent first: 16 bytes and the port. */
  server: Address;
  serverPort: number;
  clientPort: number;
  owner: Owner;
  /** How often it was sent (more than 1: retried before an answer). */
  attempts: number;
  /** Ended (answered, timed out or dropped): the queue skips it. */
  done: boolean;
}

/** How a query ended. */
export interface Outcome {
  query: Query;
  outcome: "answered" | "error" | "timeout";
  /** When it ended: the answer's arrival, or the query's deadline. */
  tsNs: number;
  /** The answer, if one came. */
  answer: DnsMessage | null;
  /** Who answered (16 bytes, port), if one did. */
  answeredBy: { addr: Address; port: number } | null;
}

/** Things that did not become (part of) an event, counted by kind. */
export type Anomaly =
  | "malformed"
  | "unmatched_answers"
  | "answers_cut"
  | "tcp_unparsed"
  | "pending_overflow"
  | "abandoned";

/** The state of one direction of a TCP stream between its segments. */
interface Stream {
  /** Bytes of a message that goes on in the next segments. */
  skip: number;
  /** The length prefix of a message whose bytes come in the next segment, or -1. */
  prefix: number;
}

/** Pairs queries and answers; calls `emit` for every query that ended, in time order. */
export class Pairing {
  /** Waiting queries by socket, then message id (no string key per packet). */
  readonly #bySocket = new Map<number, Map<number, Query[]>>();
  /** Every query in the order first sent, which is deadline order; ended ones are skipped. */
  #queue: Query[] = [];
  #head = 0;
  #size = 0;
  /** TCP stream state by socket * 2 + direction. */
  readonly #streams = new Map<number, Stream>();
  /** At most the deadline of the oldest waiting query (Infinity: none waits). */
  #nextDeadlineNs = Infinity;
  readonly #emit: (outcome: Outcome) => void;
  readonly #count: (kind: Anomaly, n: number, tsNs: number) => void;
  readonly timeoutNs: number;

  constructor(
    options: {
      timeoutMs: number;
      emit: (outcome: Outcome) => void;
      count: (kind: Anomaly, n: number, tsNs: number) => void;
    },
  ) {
    this.timeoutNs = options.timeoutMs * 1e6;
    this.#emit = options.emit;
    this.#count = options.count;
  }

  /** Queries waiting for an answer now. */
  get pending(): number {
    return this.#size;
  }

  /** Ends, as timeouts, the queries whose deadline is at or before `nowNs`. */
  expire(nowNs: number): void {
    if (nowNs < this.#nextDeadlineNs) return;
    for (;;) {
      const query = this.#oldest();
      if (!query || query.deadlineNs > nowNs) {
        this.#nextDeadlineNs = query ? query.deadlineNs : Infinity;
        return;
      }
      this.#remove(query);
      this.#emit({
        query,
        outcome: "timeout",
        tsNs: query.deadlineNs,
        answer: null,
        answeredBy: null,
      });
    }
  }

  /** Forgets every waiting query (the program stopped and its answers went unseen). */
  abandon(nowNs: number): void {
    if (this.#size) this.#count("abandoned", this.#size, nowNs);
    this.#bySocket.clear();
    this.#queue = [];
    this.#head = 0;
    this.#size = 0;
    this.#nextDeadlineNs = Infinity;
    this.#streams.clear();
  }

  /** The oldest waiting query (ended ones at the queue's head are passed), or undefined. */
  #oldest(): Query | undefined {
    const queue = this.#queue;
    while (this.#head < queue.length && queue[this.#head].done) this.#head++;
    if (this.#head > 4096 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    return this.#queue[this.#head];
  }

  /** Takes a waiting query out (it ended). */
  #remove(query: Query): void {
    query.done = true;
    this.#size--;
    const byId = this.#bySocket.get(query.socket)!;
    const list = byId.get(query.id)!;
    if (list.length === 1) {
      byId.delete(query.id);
      if (byId.size === 0) this.#bySocket.delete(query.socket);
    } else list.splice(list.indexOf(query), 1);
  }

  /** The waiting query of a socket with this id and question (any question when null). */
  #find(socket: number, id: number, question: { name: string; type: number } | null) {
    const list = this.#bySocket.get(socket)?.get(id);
    if (!list) return undefined;
    if (!question) return list[0]; // an answer without its question (some FORMERR answers)
    for (const q of list) if (q.type === question.type && q.name === question.name) return q;
    return undefined;
  }

  /** Takes one packet the kernel saw. */
  packet(p: Packet): void {
    this.expire(p.tsNs);
    if (p.transport === UDP) {
      this.#message(p, p.start, p.copied, p.len);
      return;
    }
    this.#segment(p);
  }

  /** A TCP segment's data: length prefixes and messages. */
  #segment(p: Packet): void {
    const key = p.socket * 2 + p.direction;
    const stream = this.#streams.get(key);
    let pos = 0;
    if (stream) {
      this.#streams.delete(key);
      if (stream.skip > 0) {
        const n = Math.min(stream.skip, p.len);
        pos = n;
        if (stream.skip > n) this.#keep(key, { skip: stream.skip - n, prefix: -1 });
        if (pos >= p.len) return;
      } else if (stream.prefix >= 0) {
        pos = this.#framed(p, key, 0, stream.prefix);
      }
    }
    while (pos < p.len) {
      if (pos + 2 > p.len || pos + 2 > p.copied) {
        this.#count("tcp_unparsed", 1, p.tsNs); // a stray byte, or messages past the copy
        return;
      }
      const length = (p.bytes[p.start + pos] << 8) | p.bytes[p.start + pos + 1];
      if (p.len - pos === 2) { // the prefix alone: its message comes in the next segment
        this.#keep(key, { skip: 0, prefix: length });
        return;
      }
      pos = this.#framed(p, key, pos + 2, length);
    }
  }

  /** The message of `length` bytes at `pos` of a segment; returns where the next one starts. */
  #framed(p: Packet, key: number, pos: number, length: number): number {
    const here = Math.min(length, p.len - pos);
    if (here < length) this.#keep(key, { skip: length - here, prefix: -1 });
    const copied = Math.max(0, Math.min(p.copied - pos, here));
    if (copied < 12 && here >= 12) this.#count("tcp_unparsed", 1, p.tsNs); // past the copy
    else this.#message(p, p.start + pos, copied, length);
    return pos + length;
  }

  #keep(key: number, stream: Stream): void {
    if (this.#streams.size >= MAX_STREAMS) {
      this.#streams.delete(this.#streams.keys().next().value!);
    }
    this.#streams.set(key, stream);
  }

  /** One DNS message of a packet. */
  #message(p: Packet, start: number, copied: number, length: number): void {
    let message: DnsMessage;
    try {
      message = parseMessage(p.bytes, start, copied, length);
    } catch (err) {
      if (!(err instanceof MalformedMessage)) throw err;
      this.#count("malformed", 1, p.tsNs);
      return;
    }
    if (p.direction === 0) this.#query(p, message);
    else this.#answer(p, message);
  }

  #query(p: Packet, message: DnsMessage): void {
    const q = message.question;
    if (message.response || !q) {
      this.#count("malformed", 1, p.tsNs); // sent to a DNS port, but no query
      return;
    }
    const known = this.#find(p.socket, message.id, q);
    if (known) {
      known.attempts++;
      return;
    }
    if (this.#size >= MAX_PENDING) {
      this.#remove(this.#oldest()!);
      this.#count("pending_overflow", 1, p.tsNs);
    }
    if (this.#size === 0) this.#nextDeadlineNs = p.tsNs + this.timeoutNs;
    const query: Query = {
      tsNs: p.tsNs,
      deadlineNs: p.tsNs + this.timeoutNs,
      socket: p.socket,
      id: message.id,
      name: q.name,
      type: q.type,
      transport: p.transport,
      family: p.family,
      server: addressAt(p.bytes, p.daddrAt),
      serverPort: p.dport,
      clientPort: p.sport,
      owner: { ...p.owner }, // the caller may reuse its packet and owner
      attempts: 1,
      done: false,
    };
    this.#queue.push(query);
    this.#size++;
    let byId = this.#bySocket.get(p.socket);
    if (!byId) this.#bySocket.set(p.socket, byId = new Map());
    const list = byId.get(message.id);
    if (list) list.push(query);
    else byId.set(message.id, [query]);
  }

  #answer(p: Packet, message: DnsMessage): void {
    if (!message.response) {
      this.#count("malformed", 1, p.tsNs); // received from a DNS port, but no answer
      return;
    }
    const query = this.#find(p.socket, message.id, message.question);
    if (!query) {
      this.#count("unmatched_answers", 1, p.tsNs);
      return;
    }
    this.#remove(query);
    if (message.answersCut) this.#count("answers_cut", message.answersCut, p.tsNs);
    this.#emit({
      query,
      outcome: isAnswerRcode(message.rcode) ? "answered" : "error",
      tsNs: p.tsNs,
      answer: message,
      answeredBy: { addr: addressAt(p.bytes, p.saddrAt), port: p.sport },
    });
  }
}

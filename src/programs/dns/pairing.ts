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

/** What the kernel saw of one packet (fields of `struct dns_event`). */
export interface Packet {
  /** CLOCK_BOOTTIME, ns. */
  tsNs: number;
  /** The socket's cookie, as text. */
  socket: string;
  /** 0: sent to a DNS port, 1: received from one. */
  direction: number;
  /** {@linkcode UDP} or {@linkcode TCP}. */
  transport: number;
  /** 4 or 6. */
  family: number;
  saddr: Uint8Array;
  daddr: Uint8Array;
  sport: number;
  dport: number;
  owner: Owner;
  /** The payload copied: `bytes[start, start + copied)` of a payload of `len` bytes. */
  bytes: Uint8Array;
  start: number;
  copied: number;
  len: number;
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
  socket: string;
  id: number;
  name: string;
  type: number;
  transport: number;
  family: number;
  /** Where it was sent first: 16 bytes and the port. */
  server: Uint8Array;
  serverPort: number;
  clientPort: number;
  owner: Owner;
  /** How often it was sent (more than 1: retried before an answer). */
  attempts: number;
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
  answeredBy: { addr: Uint8Array; port: number } | null;
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
  readonly #pending = new Map<string, Query>();
  readonly #streams = new Map<string, Stream>();
  readonly #emit: (outcome: Outcome) => void;
  readonly #count: (kind: Anomaly, n: number, tsNs: number) => void;
  timeoutNs: number;

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
    return this.#pending.size;
  }

  /** Ends, as timeouts, the queries whose deadline is at or before `nowNs`. */
  expire(nowNs: number): void {
    for (const [key, query] of this.#pending) {
      if (query.deadlineNs > nowNs) break; // insertion order is deadline order
      this.#pending.delete(key);
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
    if (this.#pending.size) this.#count("abandoned", this.#pending.size, nowNs);
    this.#pending.clear();
    this.#streams.clear();
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
    const key = `${p.socket}/${p.direction}`;
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
  #framed(p: Packet, key: string, pos: number, length: number): number {
    const here = Math.min(length, p.len - pos);
    if (here < length) this.#keep(key, { skip: length - here, prefix: -1 });
    const copied = Math.max(0, Math.min(p.copied - pos, here));
    if (copied < 12 && here >= 12) this.#count("tcp_unparsed", 1, p.tsNs); // past the copy
    else this.#message(p, p.start + pos, copied, length);
    return pos + length;
  }

  #keep(key: string, stream: Stream): void {
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
    const key = `${p.socket}/${message.id}/${q.type}/${q.name}`;
    const known = this.#pending.get(key);
    if (known) {
      known.attempts++;
      return;
    }
    if (this.#pending.size >= MAX_PENDING) {
      this.#pending.delete(this.#pending.keys().next().value!);
      this.#count("pending_overflow", 1, p.tsNs);
    }
    this.#pending.set(key, {
      tsNs: p.tsNs,
      deadlineNs: p.tsNs + this.timeoutNs,
      socket: p.socket,
      id: message.id,
      name: q.name,
      type: q.type,
      transport: p.transport,
      family: p.family,
      server: p.daddr.slice(),
      serverPort: p.dport,
      clientPort: p.sport,
      owner: p.owner,
      attempts: 1,
    });
  }

  #answer(p: Packet, message: DnsMessage): void {
    if (!message.response) {
      this.#count("malformed", 1, p.tsNs); // received from a DNS port, but no answer
      return;
    }
    const q = message.question;
    let key: string | undefined;
    if (q) key = `${p.socket}/${message.id}/${q.type}/${q.name}`;
    else { // an answer without its question (some FORMERR answers): by socket and id
      const prefix = `${p.socket}/${message.id}/`;
      for (const k of this.#pending.keys()) {
        if (k.startsWith(prefix)) {
          key = k;
          break;
        }
      }
    }
    const query = key === undefined ? undefined : this.#pending.get(key);
    if (!query) {
      this.#count("unmatched_answers", 1, p.tsNs);
      return;
    }
    this.#pending.delete(key!);
    if (message.answersCut) this.#count("answers_cut", message.answersCut, p.tsNs);
    this.#emit({
      query,
      outcome: isAnswerRcode(message.rcode) ? "answered" : "error",
      tsNs: p.tsNs,
      answer: message,
      answeredBy: { addr: p.saddr.slice(), port: p.sport },
    });
  }
}

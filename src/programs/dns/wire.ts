/**
 * Reads a DNS message (RFC 1035) from the bytes the kernel copied of a packet: the header, the
 * question, and the answer section (bounded). What the copy cut is said, never guessed: a
 * message longer than the copy has its answers marked incomplete, and a name or record that
 * runs past the bytes there are is a cut (inside the copy) or malformed (inside the message).
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "../../net/address.ts";
import { typeName } from "./codes.ts";

/** Answers kept per message; the header's count says how many there were. */
export const MAX_ANSWERS = 16;
/** Bytes of a record's data shown as hex when its type has no text form here. */
const MAX_HEX = 32;
const HEADER = 12;

/** One record of the answer section, with its data as text. */
export interface DnsAnswer {
  /** The owner name, lowercase, no trailing dot (`.` for the root). */
  name: string;
  /** `A`, `AAAA`, `CNAME`, ... */
  type: string;
  ttl: number;
  /** An address (A, AAAA), a name (CNAME, PTR, NS), `pref name` (MX), ... */
  data: string;
}

/** What a message says. */
export interface DnsMessage {
  id: number;
  /** QR: an answer (true) or a query. */
  response: boolean;
  opcode: number;
  /** AA */
  authoritative: boolean;
  /** TC: the server cut the answer to fit (a client retries over TCP). */
  truncated: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
  /** The first question: name (lowercase, no trailing dot), type and class. */
  question: { name: string; type: number; class: number } | null;
  /** The answer section, at most {@linkcode MAX_ANSWERS}. */
  answers: DnsAnswer[];
  /** False when the copy's end or {@linkcode MAX_ANSWERS} left answers out. */
  answersComplete: boolean;
  /** Answer records left out because the copy ended before them (or inside them). */
  answersCut: number;
}

/** Why bytes are no DNS message. */
export class MalformedMessage extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedMessage";
  }
}

/** A name's text is written here before it becomes one string (at most 4 bytes per byte). */
const NAME_TEXT = new Uint8Array(1024);

/** Thrown inside the parser when a read passes the end of the copied bytes. */
class CopyEnd extends Error {}

/**
 * Reads the message in `bytes[start, start + copied)`, of which the whole message has `length`
 * bytes (more than `copied` when the kernel cut the copy). Throws {@linkcode MalformedMessage}
 * when it is no DNS message.
 *
 * @example parseMessage(bytes, 0, bytes.length, bytes.length).question?.name // "example.com"
 */
export function parseMessage(
  bytes: Uint8Array,
  start: number,
  copied: number,
  length: number,
): DnsMessage {
  if (length < HEADER) throw new MalformedMessage(`${length} bytes is shorter than a header`);
  if (copied < HEADER) throw new MalformedMessage(`only ${copied} bytes copied`);
  const r = new Reader(bytes, start, copied, length);
  const id = r.u16(0);
  const flags = r.u16(2);
  const qdcount = r.u16(4);
  const ancount = r.u16(6);
  const message: DnsMessage = {
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    rcode: flags & 0xf,
    qdcount,
    ancount,
    question: null,
    answers: [],
    answersComplete: ancount === 0,
    answersCut: 0,
  };
  let at = HEADER;
  try {
    if (qdcount > 0) {
      const name = r.name(at);
      at = name.end;
      message.question = { name: name.text, type: r.u16(at), class: r.u16(at + 2) };
      at += 4;
      for (let q = 1; q < qdcount; q++) at = r.name(at).end + 4; // more questions: skipped
    }
  } catch (err) {
    if (err instanceof CopyEnd) throw new MalformedMessage("the question runs past the copy");
    throw err;
  }
  let n = 0;
  try {
    for (; n < ancount; n++) { // past MAX_ANSWERS, walked only to tell what the copy holds
      const name = r.name(at);
      at = name.end;
      const type = r.u16(at);
      const ttl = r.u32(at + 4);
      const rdlength = r.u16(at + 8);
      const rdata = at + 10;
      at = rdata + rdlength;
      if (at > length) throw new MalformedMessage("an answer runs past the message");
      if (at > copied) throw new CopyEnd();
      if (n >= MAX_ANSWERS) continue;
      message.answers.push({
        name: name.text,
        type: typeName(type),
        ttl,
        data: r.rdata(type, rdata, rdlength),
      });
    }
    message.answersComplete = ancount <= MAX_ANSWERS;
  } catch (err) {
    if (!(err instanceof CopyEnd)) throw err;
    message.answersCut = ancount - n;
    message.answersComplete = false;
  }
  return message;
}

/** Bounds-checked reads of a message; past the copy: CopyEnd, past the message: malformed. */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    readonly start: number,
    readonly copied: number,
    readonly length: number,
  ) {}

  #check(at: number, n: number): void {
    if (at + n > this.length) throw new MalformedMessage("a field runs past the message");
    if (at + n > this.copied) throw new CopyEnd();
  }

  u8(at: number): number {
    this.#check(at, 1);
    return this.bytes[this.start + at];
  }

  u16(at: number): number {
    this.#check(at, 2);
    const b = this.bytes, i = this.start + at;
    return (b[i] << 8) | b[i + 1];
  }

  u32(at: number): number {
    this.#check(at, 4);
    return this.u16(at) * 65536 + this.u16(at + 2);
  }

  /** A name at `at` (with compression pointers): its text and where the record goes on. */
  name(at: number): { text: string; end: number } {
    const out = NAME_TEXT;
    let n = 0;
    let end = -1;
    let wire = 0;
    for (let jumps = 0;;) {
      const len = this.u8(at);
      if (len === 0) {
        if (end < 0) end = at + 1;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        const target = ((len & 0x3f) << 8) | this.u8(at + 1);
        if (end < 0) end = at + 2;
        if (++jumps > 64 || target >= at) throw new MalformedMessage("a name pointer loops");
        at = target;
        continue;
      }
      if (len & 0xc0) throw new MalformedMessage(`label type 0x${(len & 0xc0).toString(16)}`);
      this.#check(at + 1, len);
      wire += len + 1;
      if (wire > 254) throw new MalformedMessage("a name longer than 255 bytes");
      if (n) out[n++] = 0x2e;
      n = this.#label(at + 1, len, out, n);
      at += len + 1;
    }
    if (n === 0) return { text: ".", end };
    return { text: String.fromCharCode.apply(null, out.subarray(0, n) as never), end };
  }

  /**
   * Writes a label's text at `out[n]`: lowercase, with `.`, `\` and unprintable bytes escaped as
   * dig does (`\.`, `\\`, `\032`); returns where the text ends.
   */
  #label(at: number, len: number, out: Uint8Array, n: number): number {
    const from = this.start + at;
    for (let i = 0; i < len; i++) {
      let c = this.bytes[from + i];
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) out[n++] = c;
      else if (c === 0x2e || c === 0x5c) {
        out[n++] = 0x5c;
        out[n++] = c;
      } else {
        out[n++] = 0x5c;
        out[n++] = 0x30 + Math.floor(c / 100);
        out[n++] = 0x30 + Math.floor(c / 10) % 10;
        out[n++] = 0x30 + c % 10;
      }
    }
    return n;
  }

  /** A record's data as text. */
  rdata(type: number, at: number, len: number): string {
    const b = this.bytes, i = this.start + at;
    switch (type) {
      case 1: // A
        if (len === 4) return formatIPv4(b, i);
        break;
      case 28: // AAAA
        if (len === 16) return formatIPv6(b, i);
        break;
      case 2: // NS
      case 5: // CNAME
      case 12: // PTR
      case 39: // DNAME
        return this.name(at).text;
      case 15: // MX
        return `${this.u16(at)} ${this.name(at + 2).text}`;
      case 33: // SRV
        return `${this.u16(at)} ${this.u16(at + 2)} ${this.u16(at + 4)} ${this.name(at + 6).text}`;
      case 16: { // TXT: its strings, quoted
        const parts: string[] = [];
        for (let p = at; p < at + len;) {
          const n = this.u8(p);
          if (p + 1 + n > at + len) throw new MalformedMessage("a TXT string runs past its record");
          const from = this.start + p + 1;
          parts.push(JSON.stringify(new TextDecoder().decode(b.subarray(from, from + n))));
          p += n + 1;
        }
        return parts.join(" ");
      }
    }
    const shown = Math.min(len, MAX_HEX);
    let hex = "";
    for (let k = 0; k < shown; k++) hex += b[i + k].toString(16).padStart(2, "0");
    return `\\# ${len} ${hex}${shown < len ? "..." : ""}`;
  }
}

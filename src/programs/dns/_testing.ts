/**
 * Shared by the dns tests: DNS messages built byte by byte (RFC 1035), so the parser is tested
 * against the wire format, not against itself.
 *
 * @module
 */

/** One record of an answer to build. */
export interface RecordSpec {
  name: string;
  type: number;
  ttl?: number;
  /** The record's data, already encoded (see {@linkcode ipv4}, {@linkcode encodeName}). */
  data: number[];
}

/** What a message to build holds. */
export interface MessageSpec {
  id: number;
  response?: boolean;
  rcode?: number;
  authoritative?: boolean;
  truncated?: boolean;
  question?: { name: string; type: number } | null;
  answers?: RecordSpec[];
  /** ANCOUNT to write instead of the number of answers. */
  ancount?: number;
  /** Answer names as a pointer to the question's name (offset 12), as servers write them. */
  compress?: boolean;
}

/** A name as labels, uncompressed. */
export function encodeName(name: string): number[] {
  const out: number[] = [];
  if (name !== ".") {
    for (const label of name.split(".")) {
      const bytes = new TextEncoder().encode(label);
      out.push(bytes.length, ...bytes);
    }
  }
  out.push(0);
  return out;
}

/** The 4 bytes of a dotted IPv4 address. */
export function ipv4(text: string): number[] {
  return text.split(".").map(Number);
}

/** A DNS message's bytes. */
export function buildMessage(spec: MessageSpec): Uint8Array {
  const answers = spec.answers ?? [];
  const question = spec.question === undefined ? null : spec.question;
  const flags = (spec.response ? 0x8000 : 0) | (spec.authoritative ? 0x0400 : 0) |
    (spec.truncated ? 0x0200 : 0) | 0x0100 /* RD */ | (spec.response ? 0x0080 : 0) |
    (spec.rcode ?? 0);
  const out: number[] = [
    spec.id >> 8,
    spec.id & 0xff,
    flags >> 8,
    flags & 0xff,
    0,
    question ? 1 : 0,
    (spec.ancount ?? answers.length) >> 8,
    (spec.ancount ?? answers.length) & 0xff,
    0,
    0,
    0,
    0,
  ];
  if (question) {
    out.push(...encodeName(question.name), question.type >> 8, question.type & 0xff, 0, 1);
  }
  for (const a of answers) {
    if (spec.compress && question && a.name === question.name) out.push(0xc0, 12);
    else out.push(...encodeName(a.name));
    const ttl = a.ttl ?? 300;
    out.push(
      a.type >> 8,
      a.type & 0xff,
      0,
      1,
      ttl >>> 24,
      (ttl >> 16) & 0xff,
      (ttl >> 8) & 0xff,
      ttl & 0xff,
    );
    out.push(a.data.length >> 8, a.data.length & 0xff, ...a.data);
  }
  return Uint8Array.from(out);
}

/** A message with a 2-byte length prefix, as DNS over TCP sends it. */
export function framed(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(message.length + 2);
  out[0] = message.length >> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

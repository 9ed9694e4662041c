/**
 * JSON text written as UTF-8 bytes straight into chunks of memory: numbers as digits, strings
 * copied a character at a time (escaped as `JSON.stringify` escapes them), texts made once
 * copied as bytes. A 10,000-event list (5 to 9 MB) made as strings costs about 20 ns a piece
 * to join and a pass to encode; here it is written once.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Bytes of one chunk: small enough to come from memory the allocator had already (measured:
 * writing 8 MB into fresh 1 MiB chunks took 3.2 ms, most of it page faults; into 64 to 512 KiB
 * ones, 0.4 ms), large enough that an answer is a few dozen of them.
 */
const CHUNK = 1 << 18;

/** The UTF-8 bytes of a text (a part written again and again). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A sink of JSON text: the bytes go into chunks, handed over by {@linkcode JsonBytes.take}. */
export class JsonBytes {
  #chunks: Uint8Array[] = [];
  /** bytes in `#chunks` */
  #done = 0;
  #buf = new Uint8Array(CHUNK);
  #pos = 0;
  /** The second whose ISO 8601 text (to the second) is `#isoPrefix`. */
  #isoSecond = NaN;
  #isoPrefix: Uint8Array = new Uint8Array(0);

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.#done + this.#pos;
  }

  /** Makes room for `n` more bytes in the current chunk. */
  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    if (this.#pos > 0) {
      this.#chunks.push(this.#buf.subarray(0, this.#pos));
      this.#done += this.#pos;
    }
    this.#buf = new Uint8Array(Math.max(CHUNK, n));
    this.#pos = 0;
  }

  /** The chunks written so far (this sink starts empty again). */
  take(): Uint8Array[] {
    if (this.#pos > 0) this.#chunks.push(this.#buf.subarray(0, this.#pos));
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#done = 0;
    this.#buf = this.#buf.subarray(this.#pos);
    this.#pos = 0;
    if (this.#buf.length < 4096) this.#buf = new Uint8Array(CHUNK);
    return chunks;
  }

  /** The chunk and index of byte `at` (counted as {@linkcode JsonBytes.length} counts). */
  #find(at: number): [Uint8Array, number] {
    if (at >= this.#done) return [this.#buf, at - this.#done];
    let from = this.#done;
    for (let i = this.#chunks.length - 1; i >= 0; i--) {
      from -= this.#chunks[i].length;
      if (at >= from) return [this.#chunks[i], at - from];
    }
    throw new RangeError(`byte ${at} was taken already`);
  }

  /** Byte `at` written (counted as {@linkcode JsonBytes.length} counts). */
  byteAt(at: number): number {
    if (at >= this.#done) return this.#buf[at - this.#done];
    const [chunk, i] = this.#find(at);
    return chunk[i];
  }

  /** Writes byte `at` again (counted as {@linkcode JsonBytes.length} counts). */
  setByte(at: number, code: number): void {
    const [chunk, i] = this.#find(at);
    chunk[i] = code;
  }

  /** Writes bytes (a text's UTF-8). */
  bytes(b: Uint8Array): void {
    const n = b.length;
    this.#room(n);
    const buf = this.#buf;
    let pos = this.#pos;
    if (n > 32) {
      buf.set(b, pos);
      pos += n;
    } else for (let i = 0; i < n; i++) buf[pos++] = b[i];
    this.#pos = pos;
  }

  /** Writes one byte (an ASCII character's code). */
  byte(code: number): void {
    this.#room(1);
    this.#buf[this.#pos++] = code;
  }

  /** Writes a string of ASCII characters as they are (keys, digits, `null`). */
  ascii(s: string): void {
    const n = s.length;
    this.#room(n);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    this.#pos = pos;
  }

  /** Writes any text as UTF-8 (`JSON.stringify`'s output: lone surrogates are escaped there). */
  text(s: string): void {
    this.#room(3 * s.length);
    const { written } = encoder.encodeInto(s, this.#buf.subarray(this.#pos));
    this.#pos += written;
  }

  /** Writes `JSON.stringify(s)`. */
  string(s: string): void {
    const n = s.length;
    this.#room(n + 2);
    const buf = this.#buf;
    const start = this.#pos;
    let pos = start;
    buf[pos++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) {
        // an escape or a character beyond ASCII: JSON.stringify knows them all
        this.#pos = start;
        this.text(JSON.stringify(s));
        return;
      }
      buf[pos++] = c;
    }
    buf[pos++] = 0x22;
    this.#pos = pos;
  }

  /** Writes a string known to need no escape (a time, an address) in quotes. */
  plain(s: string): void {
    const n = s.length;
    this.#room(n + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = 0x22;
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    buf[pos++] = 0x22;
    this.#pos = pos;
  }

  /** Writes `JSON.stringify(joinHostPort(ip, port))` (`net/address.ts`) of an address and port. */
  hostPort(ip: string, port: number): void {
    const n = ip.length;
    const v6 = ip.includes(":");
    this.#room(n + 4);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = 0x22;
    if (v6) buf[pos++] = 0x5b;
    for (let i = 0; i < n; i++) buf[pos++] = ip.charCodeAt(i);
    if (v6) buf[pos++] = 0x5d;
    buf[pos++] = 0x3a;
    this.#pos = pos;
    this.number(port);
    this.byte(0x22);
  }

  /** Writes `JSON.stringify(n)`: digits for a whole number, `String(n)` else, null if not finite. */
  number(n: number): void {
    if (Number.isSafeInteger(n)) this.#integer(n);
    else if (Number.isFinite(n)) this.ascii(String(n));
    else this.ascii("null");
  }

  /** The digits of a safe integer (`-0` is `0`, as String writes it). */
  #integer(n: number): void {
    this.#room(17);
    const buf = this.#buf;
    if (n < 0) {
      buf[this.#pos++] = 0x2d;
      n = -n;
    }
    if (n < 100_000_000) return this.#small(n);
    // the digits above the last eight, then those eight: small integers each
    const high = Math.floor(n / 100_000_000);
    this.#small(high);
    let low = n - 100_000_000 * high;
    let at = this.#pos + 8;
    this.#pos = at;
    for (let i = 0; i < 8; i++) {
      const q = (low / 10) | 0;
      buf[--at] = 0x30 + low - 10 * q;
      low = q;
    }
  }

  /** The digits of a whole number below 10^8 (room made). */
  #small(n: number): void {
    const buf = this.#buf;
    const digits = n < 10
      ? 1
      : n < 100
      ? 2
      : n < 1000
      ? 3
      : n < 10000
      ? 4
      : n < 100000
      ? 5
      : n < 1000000
      ? 6
      : n < 10000000
      ? 7
      : 8;
    let at = this.#pos + digits;
    this.#pos = at;
    do {
      const q = (n / 10) | 0;
      buf[--at] = 0x30 + n - 10 * q;
      n = q;
    } while (n > 0);
  }

  /** Writes `n` (0 to 999) as three digits. */
  #three(n: number): void {
    const buf = this.#buf;
    const hundreds = Math.floor(n / 100), tens = Math.floor(n / 10) - 10 * hundreds;
    buf[this.#pos++] = 0x30 + hundreds;
    buf[this.#pos++] = 0x30 + tens;
    buf[this.#pos++] = 0x30 + (n - 10 * Math.floor(n / 10));
  }

  /**
   * Writes `JSON.stringify(roundMicros(ms))` (`roundMicros` of query.ts): below 2^43 (the year
   * 2248 in Unix ms) a double's spacing is under a thousandth, so the shortest digits of a
   * number of thousandths are those thousandths without their trailing zeros.
   */
  micros(ms: number): void {
    const k = Math.round(ms * 1000);
    const whole = Math.floor(k / 1000);
    if (!(k >= 0 && whole < 2 ** 43)) return this.number(k / 1000);
    this.#integer(whole);
    let frac = k - 1000 * whole;
    if (frac === 0) return;
    this.#room(4);
    const buf = this.#buf;
    buf[this.#pos++] = 0x2e;
    let div = 100;
    while (frac > 0) {
      const d = Math.floor(frac / div);
      buf[this.#pos++] = 0x30 + d;
      frac -= d * div;
      div /= 10;
    }
  }

  /**
   * Writes `JSON.stringify(isoMicros(ms))` (`isoMicros` of query.ts): `"2026-11-25T03:04:05.123456Z"`,
   * the date and time to the second made once per second.
   */
  isoMicros(ms: number): void {
    const whole = Math.floor(ms);
    const micros = Math.min(Math.round((ms - whole) * 1000), 999);
    const second = Math.floor(whole / 1000);
    if (second !== this.#isoSecond) {
      // `"...T12:34:56.` of `...T12:34:56.000Z`
      this.#isoPrefix = utf8(`"${new Date(second * 1000).toISOString().slice(0, -4)}`);
      this.#isoSecond = second;
    }
    this.bytes(this.#isoPrefix);
    this.#room(8);
    this.#three(whole - second * 1000);
    this.#three(micros);
    this.#buf[this.#pos++] = 0x5a;
    this.#buf[this.#pos++] = 0x22;
  }
}

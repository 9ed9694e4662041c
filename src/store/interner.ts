/**
 * Interned strings: each distinct string (a command name, a socket path) is stored once and
 * events keep a 32-bit id. Interning from raw bytes allocates nothing when the string is known.
 *
 * @module
 */

const decoder = new TextDecoder();

/** Strings by id; id 0 is the empty string. */
export class Interner {
  #strings: string[] = [""];
  #bytes: Uint8Array[] = [new Uint8Array(0)];
  #byString = new Map<string, number>([["", 0]]);
  /** hash of the bytes -> ids with that hash */
  #byHash = new Map<number, number[]>();

  /** The string for `id`. */
  get(id: number): string {
    return this.#strings[id];
  }

  /** The id of `text` when it was interned, or -1 (nothing is added). */
  find(text: string): number {
    return this.#byString.get(text) ?? -1;
  }

  /** How many distinct strings are held. */
  get size(): number {
    return this.#strings.length;
  }

  /** Interns a string. */
  intern(text: string): number {
    const known = this.#byString.get(text);
    if (known !== undefined) return known;
    return this.#add(
      text,
      new TextEncoder().encode(text),
      hashBytes(new TextEncoder().encode(text), 0, Infinity),
    );
  }

  /**
   * Interns the bytes `buf[start .. start+max)` up to the first NUL (a C string field).
   * With `keepNul`, the whole `max` bytes count (for names that may hold NULs).
   */
  internBytes(buf: Uint8Array, start: number, max: number, keepNul = false): number {
    let end = start;
    const limit = start + max;
    if (keepNul) end = limit;
    else while (end < limit && buf[end] !== 0) end++;
    if (end === start) return 0;
    const hash = hashBytes(buf, start, end);
    const bucket = this.#byHash.get(hash);
    if (bucket) {
      for (const id of bucket) {
        if (sameBytes(this.#bytes[id], buf, start, end)) return id;
      }
    }
    const bytes = buf.slice(start, end);
    const text = decoder.decode(bytes);
    const known = this.#byString.get(text);
    if (known !== undefined) return known; // same text from other bytes (invalid UTF-8)
    return this.#add(text, bytes, hash);
  }

  #add(text: string, bytes: Uint8Array, hash: number): number {
    const id = this.#strings.length;
    this.#strings.push(text);
    this.#bytes.push(bytes);
    this.#byString.set(text, id);
    const bucket = this.#byHash.get(hash);
    if (bucket) bucket.push(id);
    else this.#byHash.set(hash, [id]);
    return id;
  }
}

function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  const stop = Math.min(end, buf.length);
  for (let i = start; i < stop; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

function sameBytes(known: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  if (known.length !== end - start) return false;
  for (let i = 0; i < known.length; i++) if (known[i] !== buf[start + i]) return false;
  return true;
}

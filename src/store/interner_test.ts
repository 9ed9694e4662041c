import assert from "node:assert/strict";
import { Interner } from "./interner.ts";

const encoder = new TextEncoder();

/** `text` as bytes at `start` of a buffer of `size` bytes, followed by a NUL and then junk. */
function cString(text: string, start: number, size: number): Uint8Array {
  const buf = new Uint8Array(size).fill(0x7a); // 'z' everywhere, so a missed NUL shows
  const bytes = encoder.encode(text);
  buf.set(bytes, start);
  buf[start + bytes.length] = 0;
  return buf;
}

Deno.test("Interner starts with the empty string as id 0", () => {
  const strings = new Interner();
  assert.equal(strings.size, 1);
  assert.equal(strings.get(0), "");
  assert.equal(strings.find(""), 0);
  assert.equal(strings.intern(""), 0);
  assert.equal(strings.size, 1);
});

Deno.test("Interner.internBytes stops at the first NUL", () => {
  const strings = new Interner();
  const buf = cString("curl", 3, 32);
  const id = strings.internBytes(buf, 3, 16);
  assert.equal(strings.get(id), "curl");
  assert.notEqual(id, 0);
});

Deno.test("Interner.internBytes without a NUL takes exactly max bytes", () => {
  const strings = new Interner();
  const buf = encoder.encode("0123456789abcdefXYZ");
  const id = strings.internBytes(buf, 0, 16);
  assert.equal(strings.get(id), "0123456789abcdef");
});

Deno.test("Interner.internBytes of a leading NUL is the empty string", () => {
  const strings = new Interner();
  const buf = new Uint8Array([0, 0x61, 0x62, 0]);
  assert.equal(strings.internBytes(buf, 0, 4), 0);
  assert.equal(strings.size, 1);
});

Deno.test("Interner gives the same bytes the same id without growing", () => {
  const strings = new Interner();
  const a = strings.internBytes(cString("nginx", 0, 16), 0, 16);
  const sizeAfterFirst = strings.size;
  // the same text at another offset of another buffer, different junk after the NUL
  const other = cString("nginx", 7, 40);
  other[7 + 6] = 0x41;
  const b = strings.internBytes(other, 7, 16);
  assert.equal(b, a);
  assert.equal(strings.size, sizeAfterFirst);
  assert.equal(strings.size, 2);

  const c = strings.internBytes(cString("nginy", 0, 16), 0, 16);
  assert.notEqual(c, a);
  assert.equal(strings.size, 3);
  assert.equal(strings.get(a), "nginx");
  assert.equal(strings.get(c), "nginy");
});

Deno.test("Interner.find of an unknown string is -1 and adds nothing", () => {
  const strings = new Interner();
  strings.intern("known");
  const size = strings.size;
  assert.equal(strings.find("unknown"), -1);
  assert.equal(strings.size, size);
  assert.equal(strings.find("known"), 1);
});

Deno.test("Interner.intern and internBytes agree in both orders", () => {
  const strings = new Interner();
  const viaString = strings.intern("sshd");
  assert.equal(strings.internBytes(cString("sshd", 2, 20), 2, 16), viaString);
  assert.equal(strings.size, 2);

  const viaBytes = strings.internBytes(cString("systemd-resolve", 0, 16), 0, 16);
  assert.equal(strings.intern("systemd-resolve"), viaBytes);
  assert.equal(strings.find("systemd-resolve"), viaBytes);
  assert.equal(strings.size, 3);

  // multi-byte UTF-8 as well
  const utf = strings.intern("zürich-é");
  assert.equal(strings.internBytes(cString("zürich-é", 0, 32), 0, 32), utf);
  assert.equal(strings.size, 4);
});

Deno.test("Interner.internBytes with keepNul keeps every byte of the field", () => {
  const strings = new Interner();
  const buf = new Uint8Array([0x61, 0, 0x62, 0x63, 0x7a]);
  const kept = strings.internBytes(buf, 0, 4, true);
  assert.equal(strings.get(kept), "a\0bc");
  assert.equal(strings.get(kept).length, 4);

  const stopped = strings.internBytes(buf, 0, 4);
  assert.equal(strings.get(stopped), "a");
  assert.notEqual(stopped, kept);

  // the same bytes again: the same id, nothing added
  const size = strings.size;
  assert.equal(strings.internBytes(new Uint8Array([9, 0x61, 0, 0x62, 0x63]), 1, 4, true), kept);
  assert.equal(strings.size, size);
  assert.equal(strings.intern("a\0bc"), kept);
});

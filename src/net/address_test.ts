import assert from "node:assert/strict";
import { formatIPv4, formatIPv6, joinHostPort } from "./address.ts";

/** 16 bytes from 8 16-bit groups. */
function v6(...groups: number[]): Uint8Array {
  assert.equal(groups.length, 8);
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

Deno.test("formatIPv4 formats four bytes, at an offset too", () => {
  assert.equal(formatIPv4(new Uint8Array([127, 0, 0, 1])), "127.0.0.1");
  assert.equal(formatIPv4(new Uint8Array([255, 255, 255, 255])), "255.255.255.255");
  assert.equal(formatIPv4(new Uint8Array([9, 9, 10, 1, 2, 3, 9]), 2), "10.1.2.3");
});

Deno.test("formatIPv6 compresses the loopback and the unspecified address", () => {
  assert.equal(formatIPv6(v6(0, 0, 0, 0, 0, 0, 0, 1)), "::1");
  assert.equal(formatIPv6(v6(0, 0, 0, 0, 0, 0, 0, 0)), "::");
  assert.equal(formatIPv6(v6(0xfe80, 0, 0, 0, 0, 0, 0, 0)), "fe80::");
});

Deno.test("formatIPv6 follows RFC 5952", () => {
  // lowercase, no leading zeros
  assert.equal(formatIPv6(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), "2001:db8::1");
  assert.equal(
    formatIPv6(v6(0x2001, 0xdb8, 0xabcd, 0x12, 0xffff, 0x1, 0xa, 0xbeef)),
    "2001:db8:abcd:12:ffff:1:a:beef",
  );
  // the longest run of zeros is compressed, not the first
  assert.equal(formatIPv6(v6(0x2001, 0, 0, 1, 0, 0, 0, 1)), "2001:0:0:1::1");
  // of equal runs, the first
  assert.equal(formatIPv6(v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)), "2001:db8::1:0:0:1");
  // a single zero group is not compressed
  assert.equal(formatIPv6(v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1)), "2001:db8:0:1:1:1:1:1");
  assert.equal(formatIPv6(v6(0x2001, 0xdb8, 1, 1, 1, 1, 1, 0)), "2001:db8:1:1:1:1:1:0");
});

Deno.test("formatIPv6 writes IPv4-mapped addresses with a dotted quad", () => {
  assert.equal(formatIPv6(v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)), "::ffff:1.2.3.4");
  assert.equal(formatIPv6(v6(0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001)), "::ffff:127.0.0.1");
  // not mapped: ffff in another group
  assert.equal(formatIPv6(v6(0, 0, 0, 0, 0xffff, 0, 0x0102, 0x0304)), "::ffff:0:102:304");
});

Deno.test("formatIPv6 reads at an offset", () => {
  const bytes = new Uint8Array(20);
  bytes.set(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 4);
  assert.equal(formatIPv6(bytes, 4), "2001:db8::2");
});

Deno.test("joinHostPort brackets IPv6 only", () => {
  assert.equal(joinHostPort("10.0.0.1", 80), "10.0.0.1:80");
  assert.equal(joinHostPort("::1", 443), "[::1]:443");
  assert.equal(joinHostPort("::ffff:1.2.3.4", 0), "[::ffff:1.2.3.4]:0");
});

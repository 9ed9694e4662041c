import assert from "node:assert/strict";
import { cidrHolds, formatCidr, parseCidr, parseIPv6 } from "./cidr.ts";

function v4(a: number, b: number, c: number, d: number): Uint8Array {
  const out = new Uint8Array(16);
  out.set([a, b, c, d]);
  return out;
}

Deno.test("parseCidr: addresses and prefixes, normalised", () => {
  assert.equal(formatCidr(parseCidr("10.1.2.3/8")!), "10.0.0.0/8");
  assert.equal(formatCidr(parseCidr("127.0.0.1")!), "127.0.0.1");
  assert.equal(formatCidr(parseCidr("fd00:1::5/16")!), "fd00::/16");
  assert.equal(formatCidr(parseCidr("::1")!), "::1");
  assert.equal(formatCidr(parseCidr("::ffff:10.0.0.1")!), "::ffff:10.0.0.1");
  for (
    const bad of ["", "10.0.0", "10.0.0.256", "10.0.0.1/33", "1::2::3", "::1/129", "x", "01.2.3.4"]
  ) {
    assert.equal(parseCidr(bad), null, bad);
  }
  assert.deepEqual([...parseIPv6("1:2:3:4:5:6:7:8")!.subarray(0, 4)], [0, 1, 0, 2]);
});

Deno.test("cidrHolds: prefix bits, families, IPv4-mapped addresses", () => {
  const ten = parseCidr("10.0.0.0/8")!;
  assert.ok(cidrHolds(ten, 4, v4(10, 200, 1, 1), 0));
  assert.ok(!cidrHolds(ten, 4, v4(11, 0, 0, 1), 0));
  const odd = parseCidr("192.168.4.0/22")!;
  assert.ok(cidrHolds(odd, 4, v4(192, 168, 7, 255), 0));
  assert.ok(!cidrHolds(odd, 4, v4(192, 168, 8, 0), 0));
  const mapped = parseIPv6("::ffff:10.9.8.7")!;
  assert.ok(cidrHolds(ten, 6, mapped, 0));
  assert.ok(!cidrHolds(parseCidr("::/0")!, 4, v4(1, 2, 3, 4), 0));
  assert.ok(cidrHolds(parseCidr("::1")!, 6, parseIPv6("::1")!, 0));
  assert.ok(cidrHolds(parseCidr("0.0.0.0/0")!, 4, v4(1, 2, 3, 4), 0));
});

import assert from "node:assert/strict";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  familyName,
  familyNumber,
  protocolName,
  resultName,
  socketTypeName,
} from "./names.ts";

const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

Deno.test("resultName names ok and errno values", () => {
  assert.equal(resultName(0), "ok");
  assert.equal(resultName(-111), "ECONNREFUSED");
  assert.equal(resultName(-115), "EINPROGRESS");
  assert.equal(resultName(-110), "ETIMEDOUT");
  assert.equal(resultName(-2), "ENOENT");
  assert.equal(resultName(-4000), "E4000");
});

Deno.test("protocolName of IP sockets is the IP protocol", () => {
  assert.equal(protocolName(AF_INET, IPPROTO_TCP, SOCK_STREAM), "TCP");
  assert.equal(protocolName(AF_INET, IPPROTO_UDP, SOCK_DGRAM), "UDP");
  assert.equal(protocolName(AF_INET6, IPPROTO_TCP, SOCK_STREAM), "TCP");
  assert.equal(protocolName(AF_INET6, IPPROTO_UDP, SOCK_DGRAM), "UDP");
  assert.equal(protocolName(AF_INET, 250, SOCK_DGRAM), "PROTO_250");
});

Deno.test("protocolName of a unix socket is UNIX, of no socket null", () => {
  assert.equal(protocolName(AF_UNIX, 0, SOCK_STREAM), "UNIX");
  assert.equal(protocolName(AF_UNIX, 0, SOCK_DGRAM), "UNIX");
  assert.equal(protocolName(AF_INET, IPPROTO_TCP, 0), null);
  assert.equal(protocolName(AF_UNIX, 0, 0), null);
});

Deno.test("familyName and socketTypeName", () => {
  assert.equal(familyName(AF_INET), "AF_INET");
  assert.equal(familyName(AF_INET6), "AF_INET6");
  assert.equal(familyName(AF_UNIX), "AF_UNIX");
  assert.equal(familyName(99), "AF_99");
  assert.equal(socketTypeName(SOCK_STREAM), "STREAM");
  assert.equal(socketTypeName(SOCK_DGRAM), "DGRAM");
  assert.equal(socketTypeName(0), null);
  assert.equal(socketTypeName(77), "TYPE_77");
});

Deno.test("familyNumber is the inverse of familyName", () => {
  for (const n of [0, 1, 2, 10, 16, 17, 40, 44, 42, 255]) {
    assert.equal(familyNumber(familyName(n)), n, familyName(n));
  }
  assert.equal(familyNumber("AF_INET"), AF_INET);
  assert.throws(() => familyNumber("INET"), RangeError);
});

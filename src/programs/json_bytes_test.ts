import assert from "node:assert/strict";
import { JsonBytes, utf8 } from "./json_bytes.ts";
import { COMMANDS } from "./_event_rows_testing.ts";
import { isoMicros, roundMicros } from "./query.ts";

const decoder = new TextDecoder();

const sink = new JsonBytes();

function text(write: (out: JsonBytes) => void): string {
  write(sink);
  return sink.take().map((c) => decoder.decode(c)).join("");
}

/** A few numbers of every size, sign and kind, and pseudo-random ones. */
function numbers(): number[] {
  const out = [0, -0, 1, -1, 9, 10, 99, 100, 12345678, 99999999, 100000000, 100000001];
  out.push(2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1e21);
  out.push(1.5, -1.5, 0.1, 1e-7, 123456789.5, NaN, Infinity, -Infinity, Number.MAX_VALUE);
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 20_000; i++) {
    const n = Math.floor(random() * 2 ** (1 + (i % 53)));
    out.push(i % 3 ? n : -n, n / 1000);
  }
  return out;
}

Deno.test("numbers are written as JSON.stringify writes them", () => {
  for (const n of numbers()) assert.equal(text((o) => o.number(n)), JSON.stringify(n), `${n}`);
});

Deno.test("micros and isoMicros are JSON of roundMicros and isoMicros", () => {
  const times = [0, 0.0004, 0.0005, 0.9999, 999.9996, 1795576846797.5417, 1795576845677.99];
  times.push(Date.UTC(2026, 10, 25, 3, 4, 5, 999.9996), 2 ** 43 - 0.001, 2 ** 43, 2 ** 44 + 0.5);
  times.push(-1.5, 8.64e15, NaN);
  let seed = 5;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 50_000; i++) {
    times.push(i % 2 ? random() * 2e12 : random() * (i % 7 === 0 ? 1e6 : 10));
  }
  for (const ms of times) {
    assert.equal(text((o) => o.micros(ms)), JSON.stringify(roundMicros(ms)), `micros ${ms}`);
    if (Number.isFinite(ms) && ms >= 0 && ms < 8.64e15) {
      assert.equal(text((o) => o.isoMicros(ms)), JSON.stringify(isoMicros(ms)), `iso ${ms}`);
    }
  }
});

Deno.test("strings are escaped as JSON.stringify escapes them", () => {
  const strings = [
    ...COMMANDS,
    "\u2028\u2029",
    "\ud800\udc00",
    "\udc00",
    "a\u0000b",
    "x".repeat(70_000),
  ];
  for (let c = 0; c < 0x800; c++) strings.push(`a${String.fromCharCode(c)}b`);
  for (const s of strings) assert.equal(text((o) => o.string(s)), JSON.stringify(s));
  for (const s of ["127.0.0.1", "2001:db8::1", "2026-11-25T03:04:05.123456Z"]) {
    assert.equal(text((o) => o.plain(s)), JSON.stringify(s));
  }
  for (const [ip, port] of [["127.0.0.1", 80], ["::1", 0], ["fe80::1", 65535]] as const) {
    const joined = ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
    assert.equal(text((o) => o.hostPort(ip, port)), JSON.stringify(joined));
  }
});

Deno.test("bytes go into chunks, any text fits, and bytes written can be read and written again", () => {
  const out = new JsonBytes();
  const part = utf8(',"a":1');
  const big = "y".repeat(600_000); // more than a chunk
  let want = "";
  for (let i = 0; i < 100_000; i++) {
    out.bytes(part);
    want += ',"a":1';
  }
  out.text(big);
  out.ascii("tail");
  want += big + "tail";
  assert.equal(out.length, want.length);
  assert.equal(out.byteAt(0), 0x2c);
  out.setByte(0, 0x7b);
  out.setByte(out.length - 1, 0x4c);
  want = "{" + want.slice(1, -1) + "L";
  const chunks = out.take();
  assert.ok(chunks.length > 2, `${chunks.length} chunks`);
  assert.equal(chunks.map((c) => decoder.decode(c)).join(""), want);
  assert.equal(out.length, 0);
  out.ascii("again");
  assert.equal(decoder.decode(out.take()[0]), "again");
});

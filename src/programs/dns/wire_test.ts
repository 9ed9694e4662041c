import assert from "node:assert/strict";
import { buildMessage, encodeName, ipv4 } from "./_testing.ts";
import { MalformedMessage, MAX_ANSWERS, parseMessage } from "./wire.ts";

const A = 1, NS = 2, CNAME = 5, MX = 15, TXT = 16, AAAA = 28, SRV = 33, HTTPS = 65;

function parse(bytes: Uint8Array, copied = bytes.length, length = bytes.length) {
  // at an offset inside a larger buffer, as in a drained ring
  const buf = new Uint8Array(bytes.length + 40).fill(0xa5);
  buf.set(bytes, 24);
  return parseMessage(buf, 24, copied, length);
}

Deno.test("parseMessage: a query's header and question, the name lowercased", () => {
  const m = parse(buildMessage({ id: 0xbeef, question: { name: "WWW.Example.COM", type: AAAA } }));
  assert.equal(m.id, 0xbeef);
  assert.equal(m.response, false);
  assert.equal(m.rcode, 0);
  assert.deepEqual(m.question, { name: "www.example.com", type: AAAA, class: 1 });
  assert.deepEqual(m.answers, []);
  assert.equal(m.answersComplete, true);
});

Deno.test("parseMessage: answers of several types, names through compression pointers", () => {
  const m = parse(buildMessage({
    id: 7,
    response: true,
    authoritative: true,
    compress: true,
    question: { name: "svc.test", type: A },
    answers: [
      { name: "svc.test", type: CNAME, ttl: 60, data: encodeName("edge.cdn.test") },
      { name: "edge.cdn.test", type: A, ttl: 30, data: ipv4("192.0.2.7") },
      {
        name: "edge.cdn.test",
        type: AAAA,
        data: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      },
      { name: "svc.test", type: MX, data: [0, 10, ...encodeName("mail.test")] },
      {
        name: "svc.test",
        type: TXT,
        data: [5, ...new TextEncoder().encode("hello"), 2, 0x22, 0x41],
      },
      { name: "svc.test", type: SRV, data: [0, 1, 0, 2, 0x01, 0xbb, ...encodeName("s.test")] },
      { name: "svc.test", type: NS, data: [0xc0, 12] }, // a pointer inside the data
      { name: "svc.test", type: HTTPS, data: [0, 1, 0] },
    ],
  }));
  assert.equal(m.response, true);
  assert.equal(m.authoritative, true);
  assert.equal(m.ancount, 8);
  assert.deepEqual(m.answers.map((a) => [a.name, a.type, a.ttl, a.data]), [
    ["svc.test", "CNAME", 60, "edge.cdn.test"],
    ["edge.cdn.test", "A", 30, "192.0.2.7"],
    ["edge.cdn.test", "AAAA", 300, "2001:db8::1"],
    ["svc.test", "MX", 300, "10 mail.test"],
    ["svc.test", "TXT", 300, '"hello" "\\"A"'],
    ["svc.test", "SRV", 300, "1 2 443 s.test"],
    ["svc.test", "NS", 300, "svc.test"],
    ["svc.test", "HTTPS", 300, "\\# 3 000100"],
  ]);
  assert.equal(m.answersComplete, true);
});

Deno.test("parseMessage: rcode and TC bit; NXDOMAIN without answers", () => {
  const m = parse(buildMessage({
    id: 1,
    response: true,
    rcode: 3,
    truncated: true,
    question: { name: "nope.test", type: A },
  }));
  assert.equal(m.rcode, 3);
  assert.equal(m.truncated, true);
  assert.equal(m.ancount, 0);
});

Deno.test("parseMessage: a copy shorter than the message cuts answers, counted", () => {
  const answers = Array.from({ length: 6 }, (_, i) => ({
    name: `host-${i}.example.test`,
    type: A,
    data: ipv4(`10.0.0.${i}`),
  }));
  const bytes = buildMessage({
    id: 2,
    response: true,
    question: { name: "x.test", type: A },
    answers,
  });
  // the copy ends inside the fourth answer
  const question = 12 + encodeName("x.test").length + 4;
  const perAnswer = encodeName("host-0.example.test").length + 10 + 4;
  const copied = question + 3 * perAnswer + 5;
  const m = parse(bytes, copied, bytes.length);
  assert.equal(m.answers.length, 3);
  assert.equal(m.answersComplete, false);
  assert.equal(m.answersCut, 3);
  assert.equal(m.ancount, 6);
});

Deno.test("parseMessage: at most MAX_ANSWERS answers, the rest said", () => {
  const answers = Array.from({ length: MAX_ANSWERS + 4 }, (_, i) => ({
    name: "many.test",
    type: A,
    data: ipv4(`10.1.0.${i}`),
  }));
  const m = parse(
    buildMessage({ id: 3, response: true, question: { name: "many.test", type: A }, answers }),
  );
  assert.equal(m.answers.length, MAX_ANSWERS);
  assert.equal(m.answersComplete, false);
  assert.equal(m.answersCut, 0, "not cut by the copy");
});

Deno.test("parseMessage: escapes in labels as dig writes them", () => {
  const name = [3, 0x61, 0x2e, 0x62, 4, 0x20, 0x5c, 0x7f, 0x43, 0];
  const bytes = Uint8Array.from([0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...name, 0, 1, 0, 1]);
  assert.equal(parse(bytes).question?.name, "a\\.b.\\032\\\\\\127c");
  const root = Uint8Array.from([0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
  assert.equal(parse(root).question?.name, ".");
});

Deno.test("parseMessage: what is no DNS message is malformed", () => {
  const bad = (bytes: number[] | Uint8Array, copied?: number, length?: number) =>
    assert.throws(
      () => parse(Uint8Array.from(bytes), copied, length),
      MalformedMessage,
      JSON.stringify([...bytes].slice(0, 20)),
    );
  bad([0, 1, 0, 0, 0, 1]); // shorter than a header
  bad([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61]); // a label past the message
  bad([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]); // a pointer to itself
  bad([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1]); // label type 0x40
  bad([
    0,
    1,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    ...Array.from({ length: 5 }, () => [63, ...new Array(63).fill(0x61)]).flat(),
    0,
    0,
    1,
    0,
    1,
  ]); // > 255
  // an answer whose data runs past the message
  const ok = buildMessage({
    id: 4,
    response: true,
    question: { name: "a.test", type: A },
    answers: [{ name: "a.test", type: A, data: ipv4("1.2.3.4") }],
  });
  bad(ok.subarray(0, ok.length - 2));
  // a question cut by the copy (never happens with 512 bytes copied, but said)
  bad(ok, 14, ok.length);
});

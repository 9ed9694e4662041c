import assert from "node:assert/strict";
import { buildMessage, framed, ipv4 } from "./_testing.ts";
import {
  addressAt,
  type Anomaly,
  MAX_PENDING,
  type Outcome,
  type Owner,
  type Packet,
  Pairing,
  TCP,
  UDP,
  writeAddress,
} from "./pairing.ts";

const A = 1, AAAA = 28;
const MS = 1e6;

const CLIENT = Uint8Array.from([127, 0, 0, 1, ...new Array(12).fill(0)]);
const SERVER = Uint8Array.from([127, 0, 0, 53, ...new Array(12).fill(0)]);
const OWNER: Owner = { known: true, pid: 42, tid: 43, uid: 1000, cgroupId: 7, netns: 9, comm: 5 };

function harness(timeoutMs = 5000) {
  const outcomes: Outcome[] = [];
  const counts = new Map<Anomaly, number>();
  const pairing = new Pairing({
    timeoutMs,
    emit: (o) => outcomes.push(o),
    count: (kind, n) => counts.set(kind, (counts.get(kind) ?? 0) + n),
  });
  return { pairing, outcomes, counts };
}

/** A packet of `payload`, sent (0) by the client or received (1) from the server. */
function packet(
  direction: 0 | 1,
  tsMs: number,
  payload: Uint8Array,
  options: { socket?: number; transport?: number; copied?: number; len?: number } = {},
): Packet {
  // the addresses, then the payload, as in a record
  const bytes = new Uint8Array(payload.length + 48).fill(0xa5);
  bytes.set(direction === 0 ? CLIENT : SERVER, 0);
  bytes.set(direction === 0 ? SERVER : CLIENT, 16);
  bytes.set(payload, 40);
  return {
    tsNs: tsMs * MS,
    socket: options.socket ?? 100,
    direction,
    transport: options.transport ?? UDP,
    family: 4,
    saddrAt: 0,
    daddrAt: 16,
    sport: direction === 0 ? 40000 : 53,
    dport: direction === 0 ? 53 : 40000,
    owner: OWNER,
    bytes,
    start: 40,
    copied: options.copied ?? payload.length,
    len: options.len ?? payload.length,
  };
}

const query = (id: number, name = "name.test", type = A) =>
  buildMessage({ id, question: { name, type } });
const answer = (id: number, name = "name.test", type = A, rcode = 0) =>
  buildMessage({
    id,
    response: true,
    rcode,
    question: { name, type },
    answers: rcode ? [] : [{ name, type: A, data: ipv4("127.0.0.5") }],
  });

Deno.test("Pairing: A and AAAA sent together on one socket are two queries, each answered", () => {
  const { pairing, outcomes, counts } = harness();
  pairing.packet(packet(0, 1000, query(1, "name.test", A)));
  pairing.packet(packet(0, 1000.01, query(2, "name.test", AAAA)));
  assert.equal(pairing.pending, 2);
  pairing.packet(packet(1, 1000.5, answer(2, "name.test", AAAA)));
  pairing.packet(packet(1, 1000.7, answer(1, "name.test", A)));
  assert.equal(pairing.pending, 0);
  assert.deepEqual(
    outcomes.map((
      o,
    ) => [o.query.id, o.query.type, o.outcome, Math.round((o.tsNs - o.query.tsNs) / 1e3)]),
    [[2, AAAA, "answered", 490], [1, A, "answered", 700]],
  );
  const first = outcomes[1];
  assert.equal(first.query.name, "name.test");
  assert.equal(first.query.owner.pid, 42);
  assert.equal(first.query.serverPort, 53);
  assert.equal(first.query.clientPort, 40000);
  const answeredBy = new Uint8Array(16);
  writeAddress(first.answeredBy!.addr, answeredBy, 0);
  assert.deepEqual([...answeredBy], [...SERVER]);
  assert.deepEqual(first.query.server, addressAt(SERVER, 0));
  assert.equal(first.answer?.answers[0].data, "127.0.0.5");
  assert.equal(counts.size, 0);
});

Deno.test("Pairing: NXDOMAIN is an answer, SERVFAIL an error", () => {
  const { pairing, outcomes } = harness();
  pairing.packet(packet(0, 1, query(5, "nope.test")));
  pairing.packet(packet(1, 2, answer(5, "nope.test", A, 3)));
  pairing.packet(packet(0, 3, query(6, "broken.test")));
  pairing.packet(packet(1, 4, answer(6, "broken.test", A, 2)));
  assert.deepEqual(outcomes.map((o) => [o.outcome, o.answer?.rcode]), [["answered", 3], [
    "error",
    2,
  ]]);
});

Deno.test("Pairing: no answer within the timeout is a timeout at the deadline, in time order", () => {
  const { pairing, outcomes } = harness(2000);
  pairing.packet(packet(0, 1000, query(1, "slow.test")));
  pairing.packet(packet(0, 2500, query(2, "fast.test")));
  pairing.expire(2999 * MS);
  assert.equal(outcomes.length, 0, "not yet");
  // a packet after the deadline ends the first query before it is taken
  pairing.packet(packet(1, 3100, answer(2, "fast.test")));
  assert.deepEqual(outcomes.map((o) => [o.query.name, o.outcome, o.tsNs / MS]), [
    ["slow.test", "timeout", 3000],
    ["fast.test", "answered", 3100],
  ]);
  assert.equal(outcomes[0].answer, null);
  assert.equal(pairing.pending, 0);
});

Deno.test("Pairing: a retry before the answer is another attempt; latency from the first send", () => {
  const { pairing, outcomes } = harness();
  pairing.packet(packet(0, 100, query(9)));
  pairing.packet(packet(0, 1100, query(9)));
  pairing.packet(packet(1, 1150, answer(9)));
  assert.equal(outcomes.length, 1);
  assert.equal(outcomes[0].query.attempts, 2);
  assert.equal((outcomes[0].tsNs - outcomes[0].query.tsNs) / MS, 1050);
});

Deno.test("Pairing: answers are matched by socket, id and question; the rest is counted", () => {
  const { pairing, outcomes, counts } = harness();
  pairing.packet(packet(0, 1, query(1, "a.test"), { socket: 1 }));
  pairing.packet(packet(1, 2, answer(1, "a.test"), { socket: 2 })); // another socket
  pairing.packet(packet(1, 3, answer(1, "b.test"), { socket: 1 })); // another question
  pairing.packet(packet(1, 4, answer(2, "a.test"), { socket: 1 })); // another id
  assert.equal(outcomes.length, 0);
  assert.equal(counts.get("unmatched_answers"), 3);
  pairing.packet(packet(1, 5, answer(1, "a.test"), { socket: 1 }));
  assert.equal(outcomes.length, 1);
  pairing.packet(packet(1, 6, answer(1, "a.test"), { socket: 1 })); // a duplicate
  assert.equal(counts.get("unmatched_answers"), 4);
});

Deno.test("Pairing: malformed packets and messages of the wrong kind are counted", () => {
  const { pairing, outcomes, counts } = harness();
  pairing.packet(packet(0, 1, Uint8Array.from([1, 2, 3])));
  pairing.packet(packet(0, 2, answer(1))); // an answer sent to a DNS port
  pairing.packet(packet(1, 3, query(1))); // a query received from one
  pairing.packet(packet(0, 4, buildMessage({ id: 3, question: null }))); // no question
  assert.equal(counts.get("malformed"), 4);
  assert.equal(outcomes.length, 0);
  assert.equal(pairing.pending, 0);
});

Deno.test("Pairing: an answer cut by the copy says so and counts the answers left out", () => {
  const { pairing, outcomes, counts } = harness();
  const big = buildMessage({
    id: 4,
    response: true,
    question: { name: "big.test", type: A },
    answers: Array.from(
      { length: 40 },
      (_, i) => ({ name: "big.test", type: A, data: ipv4(`10.0.0.${i}`) }),
    ),
  });
  assert.ok(big.length > 512);
  pairing.packet(packet(0, 1, query(4, "big.test")));
  pairing.packet(packet(1, 2, big, { copied: 512, len: big.length }));
  assert.equal(outcomes.length, 1);
  assert.equal(outcomes[0].answer?.answersComplete, false);
  assert.ok(outcomes[0].answer!.answers.length > 0);
  // a 12-byte header, a 14-byte question, 24 bytes per answer: 20 fit in 512 bytes
  assert.equal(counts.get("answers_cut"), 40 - Math.floor((512 - 12 - 14) / 24));
});

Deno.test("Pairing: DNS over TCP, one message per segment", () => {
  const { pairing, outcomes, counts } = harness();
  pairing.packet(packet(0, 1, framed(query(77, "tcp.test")), { transport: TCP }));
  pairing.packet(packet(1, 3, framed(answer(77, "tcp.test")), { transport: TCP }));
  assert.deepEqual(outcomes.map((o) => [o.query.name, o.query.transport, o.outcome]), [
    ["tcp.test", TCP, "answered"],
  ]);
  assert.equal(counts.size, 0);
});

Deno.test("Pairing: DNS over TCP, a length prefix alone, then its message", () => {
  const { pairing, outcomes, counts } = harness();
  const q = framed(query(78, "split.test"));
  pairing.packet(packet(0, 1, q.subarray(0, 2), { transport: TCP }));
  pairing.packet(packet(0, 1.1, q.subarray(2), { transport: TCP }));
  pairing.packet(packet(1, 2, framed(answer(78, "split.test")), { transport: TCP }));
  assert.equal(outcomes.length, 1);
  assert.equal(counts.size, 0);
});

Deno.test("Pairing: DNS over TCP, an answer over several segments, then two in one", () => {
  const { pairing, outcomes, counts } = harness();
  const tcp = { transport: TCP };
  pairing.packet(packet(0, 1, framed(query(80, "one.test")), tcp));
  const long = framed(answer(80, "one.test"));
  pairing.packet(packet(1, 2, long.subarray(0, 20), tcp)); // header and part of the question
  pairing.packet(packet(1, 2.1, long.subarray(20), tcp)); // the rest: skipped, not misread
  assert.equal(counts.get("malformed") ?? 0, 1, "the first part's question is cut: malformed");
  assert.equal(counts.get("tcp_unparsed") ?? 0, 0);
  // two queries in one segment, their answers in one
  const two = (a: Uint8Array, b: Uint8Array) => Uint8Array.from([...a, ...b]);
  pairing.packet(packet(0, 3, two(framed(query(81, "x.test")), framed(query(82, "y.test"))), tcp));
  pairing.packet(
    packet(1, 4, two(framed(answer(82, "y.test")), framed(answer(81, "x.test"))), tcp),
  );
  assert.deepEqual(outcomes.map((o) => o.query.id), [82, 81]);
  assert.equal(pairing.pending, 1, "one.test still waits (its answer was unreadable)");
  // a stray byte after a message is counted, not guessed at
  pairing.packet(packet(1, 5, Uint8Array.from([...framed(answer(80, "one.test")), 9]), tcp));
  assert.equal(counts.get("tcp_unparsed"), 1);
  assert.equal(outcomes.length, 3);
});

Deno.test("Pairing: at most MAX_PENDING wait; the oldest are dropped and counted", () => {
  const { pairing, counts } = harness();
  for (let i = 0; i < MAX_PENDING + 3; i++) {
    pairing.packet(packet(0, 1, query(i & 0xffff, `n${i}.test`), { socket: 1000 + (i >> 16) }));
  }
  assert.equal(pairing.pending, MAX_PENDING);
  assert.equal(counts.get("pending_overflow"), 3);
});

Deno.test("Pairing: abandon forgets the waiting queries and counts them", () => {
  const { pairing, outcomes, counts } = harness();
  pairing.packet(packet(0, 1, query(1)));
  pairing.packet(packet(0, 1, query(2)));
  pairing.abandon(10 * MS);
  assert.equal(pairing.pending, 0);
  assert.equal(counts.get("abandoned"), 2);
  pairing.expire(1e9 * MS);
  assert.equal(outcomes.length, 0);
});

Deno.test("addressAt and writeAddress: 16 bytes there and back, high bits too", () => {
  const bytes = Uint8Array.from({ length: 20 }, (_, i) => (i * 37 + 200) & 0xff);
  const out = new Uint8Array(20);
  writeAddress(addressAt(bytes, 3), out, 2);
  assert.deepEqual([...out.subarray(2, 18)], [...bytes.subarray(3, 19)]);
});

/**
 * dns ingest: a drained buffer of 1000 DNS queries and their answers (500 names, one A record
 * each, 100 sockets) decoded, parsed, paired and stored by the program's batch decoder; beside,
 * the parse of the same 2000 messages alone. Divide by 1000 for the cost per query. Run:
 * `deno bench --allow-all bench/dns_bench.ts`.
 *
 * @module
 */

import { readAsset } from "../src/assets.ts";
import { BpfObject } from "../src/ffi/shim.ts";
import { Store } from "../src/store/mod.ts";
import { btfOffsets, fixedClock } from "../src/programs/_testing.ts";
import { buildMessage, ipv4 } from "../src/programs/dns/_testing.ts";
import { columns, dns } from "../src/programs/dns/mod.ts";
import { parseMessage } from "../src/programs/dns/wire.ts";

const N = 1000;
const obj = new BpfObject(readAsset("bpf/dns.bpf.o"), "dns");
const { at, size } = btfOffsets(
  obj,
  "dns_event",
  [
    "ts_ns",
    "cookie",
    "pid",
    "len",
    "sport",
    "dport",
    "copied",
    "direction",
    "family",
    "protocol",
    "has_owner",
    "comm",
    "data",
  ] as const,
);
const stride = 8 + ((size + 7) & ~7);
const bytes = new Uint8Array(stride * N * 2);
const view = new DataView(bytes.buffer);
for (let i = 0; i < N; i++) {
  const name = `host${i % 500}.example.test`;
  for (const d of [0, 1]) {
    const h = (2 * i + d) * stride, r = h + 8;
    const message = d === 0 ? buildMessage({ id: i, question: { name, type: 1 } }) : buildMessage({
      id: i,
      response: true,
      compress: true,
      question: { name, type: 1 },
      answers: [{ name, type: 1, data: ipv4(`10.0.${(i % 500) >> 8}.${i % 256}`) }],
    });
    view.setUint32(h, size, true);
    view.setBigUint64(r + at.ts_ns, BigInt(1e9 + i * 10_000 + d * 5_000), true);
    view.setBigUint64(r + at.cookie, BigInt(i % 100), true);
    view.setUint32(r + at.pid, 1000 + (i % 100), true);
    view.setUint32(r + at.len, message.length, true);
    view.setUint16(r + at.copied, message.length, true);
    view.setUint16(r + at.sport, d ? 53 : 40000, true);
    view.setUint16(r + at.dport, d ? 40000 : 53, true);
    bytes[r + at.direction] = d;
    bytes[r + at.family] = 4;
    bytes[r + at.protocol] = 17;
    bytes[r + at.has_owner] = 1;
    bytes.set(new TextEncoder().encode("app\0"), r + at.comm);
    bytes.set(message, r + at.data);
  }
}

// boot time 0 is now: the records are a second old, none has timed out
const clock = fixedClock(Date.now() - 1000);
const store = new Store(1 << 20);
const table = store.table("dns", columns);
const decode = dns.batchDecoder!({ obj, store, table, clock } as never);

Deno.bench(`dns: decode, parse, pair and store ${N} queries and their answers`, {
  group: "dns",
  baseline: true,
}, () => {
  const result = decode(bytes);
  if (result.events !== N) throw new Error(`${result.events} queries, not ${N}`);
});

let sink = 0;
Deno.bench(`dns: parse the ${2 * N} messages alone`, { group: "dns" }, () => {
  for (let i = 0; i < 2 * N; i++) {
    const r = i * stride + 8;
    const copied = view.getUint16(r + at.copied, true);
    sink += parseMessage(bytes, r + at.data, copied, view.getUint32(r + at.len, true)).id;
  }
});

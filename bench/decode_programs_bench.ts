/**
 * Ingest of the other programs: a drained buffer of `tcp_life` and of `packet_drop` records (as
 * the ring has them: 8-byte headers, records padded to 8) decoded into a full store (every row
 * evicts one) by each program's batch decoder, as the server runs it. Divide by the record
 * count in each name for the cost per event. Run: `deno bench --allow-all bench/`.
 *
 * @module
 */

import { readAsset } from "../src/assets.ts";
import { BpfObject } from "../src/ffi/shim.ts";
import { batchDecoderOf } from "../src/programs/batch.ts";
import { packetDrop } from "../src/programs/packet_drop/mod.ts";
import type { Program } from "../src/programs/program.ts";
import { tcpLife } from "../src/programs/tcp_life/mod.ts";
import { fixedClock } from "../src/programs/_testing.ts";
import { type EventTable, Store } from "../src/store/mod.ts";

const N = 4096;
const clock = fixedClock(Date.now());
const encoder = new TextEncoder();

/** N records of `struct`, each made by `fill(view, bytes, offset of the record, i)`. */
function records(
  obj: BpfObject,
  struct: string,
  fill: (at: (name: string) => number, v: DataView, b: Uint8Array, r: number, i: number) => void,
): Uint8Array {
  const size = obj.structSize(struct);
  const stride = 8 + ((size + 7) & ~7);
  const bytes = new Uint8Array(N * stride);
  const view = new DataView(bytes.buffer);
  const at = (name: string) => obj.member(struct, name).offset;
  for (let i = 0; i < N; i++) {
    view.setUint32(i * stride, size, true);
    fill(at, view, bytes, i * stride + 8, i);
  }
  return bytes;
}

function bench(program: Program, obj: BpfObject, buf: Uint8Array) {
  const store = new Store(1 << 16);
  const table = store.table(program.name, program.columns) as EventTable;
  const decode = batchDecoderOf(program, { obj, store, table, clock });
  for (let i = 0; i < 20; i++) decode(buf); // full: every row from now on evicts one
  Deno.bench(`${program.name}: decode ${N} records into a full store`, {
    group: program.name,
  }, () => {
    const { events } = decode(buf);
    if (events !== N) throw new Error(`${events} of ${N} records decoded`);
  });
}

const tcpObj = new BpfObject(readAsset("bpf/tcp_life.bpf.o"), "tcp_life");
// a server's accepted connections: one process, its clients' ports, established then closed
bench(
  tcpLife,
  tcpObj,
  records(tcpObj, "tcp_life_event", (at, v, b, r, i) => {
    v.setBigUint64(r + at("ts_ns"), BigInt(1e9 + i * 1000), true);
    v.setBigUint64(r + at("start_ns"), BigInt(1e9 + i * 1000 - 500_000), true);
    v.setBigUint64(r + at("bytes_sent"), 1000n, true);
    v.setBigUint64(r + at("bytes_received"), 200n, true);
    v.setBigUint64(r + at("cgroup_id"), 1n, true);
    v.setUint32(r + at("pid"), 4242, true);
    v.setUint16(r + at("sport"), 8080, true);
    v.setUint16(r + at("dport"), 30000 + (i % 20000), true);
    v.setUint16(r + at("family"), 2, true);
    b[r + at("direction")] = 2;
    b[r + at("state")] = 7;
    b[r + at("has_owner")] = 1;
    b[r + at("nstates")] = 4;
    b.set([3, 1, 8, 7], r + at("states"));
    b.set([127, 0, 0, 1], r + at("saddr"));
    b.set([127, 0, 0, 1], r + at("daddr"));
    b.set(encoder.encode("nginx"), r + at("comm"));
  }),
);

const dropObj = new BpfObject(readAsset("bpf/packet_drop.bpf.o"), "packet_drop");
// a UDP flood to a closed port: one sender, the same reason and location
bench(
  packetDrop,
  dropObj,
  records(dropObj, "packet_drop_event", (at, v, b, r, i) => {
    v.setBigUint64(r + at("ts_ns"), BigInt(1e9 + i * 1000), true);
    v.setBigUint64(r + at("location"), 0xffffffff81234567n, true);
    v.setBigUint64(r + at("cgroup_id"), 1n, true);
    v.setUint32(r + at("reason"), 2, true);
    v.setUint32(r + at("pid"), 777, true);
    v.setUint32(r + at("len"), 64, true);
    v.setUint32(r + at("ifindex"), 1, true);
    v.setUint16(r + at("protocol"), 0x0800, true);
    v.setUint16(r + at("sport"), 40000, true);
    v.setUint16(r + at("dport"), 9, true);
    b[r + at("l4_protocol")] = 17;
    b[r + at("ip_version")] = 4;
    b.set([127, 0, 0, 1], r + at("saddr"));
    b.set([127, 0, 0, 1], r + at("daddr"));
    b.set(encoder.encode("loadgen"), r + at("comm"));
    b.set(encoder.encode("lo"), r + at("ifname"));
  }),
);

/**
 * Synthetic `connection` records for the `deno bench` micro-benchmarks: drain buffers laid out as
 * the shim's `ebpf_ring_drain` writes them (`[u32 size][u32 0][record padded to 8]`), with field
 * offsets read from the BPF object's BTF (as src/programs/connection/connection_test.ts does), and
 * a store filled with a million of them.
 *
 * @module
 */

import type { BpfObject } from "../src/ffi/shim.ts";
import { batchDecoderOf } from "../src/programs/batch.ts";
import { connection } from "../src/programs/connection/mod.ts";
import { type EventTable, Store } from "../src/store/mod.ts";
import { btfOffsets, fixedClock } from "../src/programs/_testing.ts";
import { IP_FIELDS, openObject } from "../src/programs/connection/_testing.ts";

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

export type Layout = Record<typeof IP_FIELDS[number], number> & { size: number };

export { openObject as openConnectionObject };

/** Offsets of struct connection_event (the IP record), read from BTF independently of the decoder. */
export function layout(obj: BpfObject): Layout {
  const { at, size } = btfOffsets(obj, "connection_event", IP_FIELDS);
  return { ...at, size };
}

const COMMANDS = [
  "curl",
  "nginx",
  "python3",
  "postgres",
  "node",
  "java",
  "systemd-resolve",
  "sshd",
  "redis-server",
  "envoy",
  "dig",
  "wget",
  "apt-get",
  "containerd",
  "kubelet",
  "dockerd",
  "haproxy",
  "ruby",
  "php-fpm",
  "loadgen",
].map((c) => new TextEncoder().encode(c));

/**
 * Writes record `i` of a deterministic mix: 50 pids, 20 commands, 200 IPv4 destinations and 5%
 * IPv6, results ok / ECONNREFUSED / EINPROGRESS, TCP and UDP.
 */
export function writeRecord(
  view: DataView,
  bytes: Uint8Array,
  r: number,
  at: Layout,
  i: number,
  tsNs: number,
): void {
  const pid = 1000 + (i % 50);
  const dest = (i * 7919) % 200;
  const v6 = i % 20 === 0;
  const udp = i % 4 === 0;
  bytes.fill(0, r, r + at.size);
  view.setBigUint64(r + at.ts_ns, BigInt(Math.round(tsNs)), true);
  view.setBigUint64(r + at.latency_ns, BigInt(1000 + ((i * 2654435761) % 500_000)), true);
  view.setBigUint64(r + at.cgroup_id, 1n, true);
  view.setBigUint64(r + at.sock_id, 0xffff_8880_0000_0000n + BigInt(i * 64), true);
  view.setUint32(r + at.pid, pid, true);
  view.setUint32(r + at.tid, pid, true);
  view.setUint32(r + at.uid, 0, true);
  view.setInt32(r + at.ret, i % 3 === 0 ? 0 : i % 3 === 1 ? -111 : -115, true);
  view.setUint16(r + at.family, v6 ? AF_INET6 : AF_INET, true);
  view.setUint16(r + at.port, 1000 + (dest % 50), true);
  view.setUint16(r + at.sock_type, udp ? SOCK_DGRAM : SOCK_STREAM, true);
  view.setUint16(r + at.protocol, udp ? IPPROTO_UDP : IPPROTO_TCP, true);
  if (v6) {
    bytes.set([0x20, 0x01, 0x0d, 0xb8], r + at.addr);
    bytes[r + at.addr + 15] = dest;
  } else {
    bytes.set([10, 0, dest >> 4, dest & 15], r + at.addr);
  }
  bytes.set(COMMANDS[(i >> 3) % COMMANDS.length], r + at.comm);
}

/** A drain buffer of `cap` bytes filled with as many records as fit. */
export function drainBuffer(
  at: Layout,
  cap = 1 << 20,
  first = 0,
  tsStartNs = 0,
  tsStepNs = 50_000,
) {
  const bytes = new Uint8Array(cap);
  const view = new DataView(bytes.buffer);
  const stride = 8 + ((at.size + 7) & ~7);
  const count = Math.floor(cap / stride);
  for (let k = 0; k < count; k++) {
    const off = k * stride;
    view.setUint32(off, at.size, true);
    view.setUint32(off + 4, 0, true);
    writeRecord(view, bytes, off + 8, at, first + k, tsStartNs + (first + k) * tsStepNs);
  }
  return { bytes, view, used: count * stride, count };
}

/** The walk of ProgramManager.#drainSlot over one drained buffer, calling `decode` per record. */
export function walk(
  view: DataView,
  bytes: Uint8Array,
  used: number,
  decode: (view: DataView, bytes: Uint8Array, offset: number, size: number) => void,
): number {
  let n = 0;
  for (let off = 0; off < used;) {
    const size = view.getUint32(off, true);
    decode(view, bytes, off + 8, size);
    n++;
    off += 8 + ((size + 7) & ~7);
  }
  return n;
}

/**
 * A store holding `events` connection events, 50 µs apart, the newest `endMs` (Unix ms): a 60 s
 * window ending at `endMs` covers all of a million.
 */
export function filledStore(events: number, endMs: number, capacity = events) {
  const obj = openObject();
  const at = layout(obj);
  const store = new Store(capacity);
  const table = store.table("connection", connection.columns) as EventTable<
    typeof connection.columns
  >;
  const stepNs = 50_000;
  const bootWallMs = endMs - (events - 1) * stepNs / 1e6;
  const decode = batchDecoderOf(connection, { obj, store, table, clock: fixedClock(bootWallMs) });
  const perBuffer = drainBuffer(at).count;
  for (let first = 0; first < events; first += perBuffer) {
    const n = Math.min(perBuffer, events - first);
    const stride = 8 + ((at.size + 7) & ~7);
    const buf = drainBuffer(at, n * stride, first, 0, stepNs);
    decode(buf.bytes.subarray(0, buf.used));
  }
  return { obj, at, store, table };
}

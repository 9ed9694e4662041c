/**
 * connection: the summary of the stored connect() events in a window.
 *
 * @module
 */

import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  familyName,
  protocolName,
  resultName,
} from "../../net/names.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { quantilesOf, scanPlan, type SummaryQuery } from "../query.ts";
import type { columns } from "./mod.ts";

type Columns = typeof columns;

const EINPROGRESS = -115;

/** Where a stored connect() went: IP and port, unix path, or the family's name. */
export function destinationOf(table: EventTable<Columns>, slot: number, store: Store) {
  const c = table.cols;
  const family = c.family[slot];
  const addr = table.bytes16("addr", slot);
  let ip: string | null = null;
  if (family === AF_INET) ip = formatIPv4(addr);
  else if (family === AF_INET6) ip = formatIPv6(addr);
  const port = ip === null ? null : c.port[slot];
  const path = family === AF_UNIX ? store.strings.get(c.unix_path[slot]) : null;
  const destination = ip !== null ? joinHostPort(ip, port!) : path ?? familyName(family);
  return { ip, port, path, destination };
}

/** Counts by a small integer code, remembering the order in which codes first appeared. */
class CodeCounts {
  readonly count: Float64Array;
  readonly first: Float64Array;
  constructor(size: number) {
    this.count = new Float64Array(size);
    this.first = new Float64Array(size);
  }
  add(code: number, row: number): void {
    if (this.count[code]++ === 0) this.first[code] = row;
  }
  /** Merged by name (several codes can share one), largest first, ties in order of appearance. */
  named(name: (code: number) => string, extra?: Map<string, { n: number; first: number }>) {
    const byName = new Map<string, { n: number; first: number }>(extra);
    for (let code = 0; code < this.count.length; code++) {
      const n = this.count[code];
      if (n === 0) continue;
      const key = name(code);
      const e = byName.get(key);
      if (!e) byName.set(key, { n, first: this.first[code] });
      else {
        e.n += n;
        e.first = Math.min(e.first, this.first[code]);
      }
    }
    return [...byName].sort((a, b) => b[1].n - a[1].n || a[1].first - b[1].first);
  }
}

const ERRNO_CODES = 4096;
const PROTO_UNKNOWN = 0, PROTO_UNIX = 1, PROTO_IP = 2, PROTO_OTHER = 2 + 65536;

/**
 * Destinations counted by (family, address, port) or unix path, in an open-addressing table of
 * typed arrays: no string per row; each distinct destination is formatted once at the end.
 */
class DestinationCounts {
  #mask = 1023;
  rep = new Int32Array(1024).fill(-1); // a row slot holding the destination
  count = new Float64Array(1024);
  failed = new Float64Array(1024);
  first = new Float64Array(1024);
  #used = 0;
  #last = -1;
  constructor(
    readonly family: Uint8Array,
    readonly port: Uint16Array,
    readonly addr: Uint32Array,
    readonly path: Uint32Array,
  ) {}

  #hash(s: number): number {
    const f = this.family[s];
    let h: number;
    if (f === AF_INET) h = this.addr[4 * s] ^ Math.imul(this.port[s], 0x9e3779b1);
    else if (f === AF_INET6) {
      const a = 4 * s;
      h = Math.imul(this.addr[a] ^ this.port[s], 0x9e3779b1) ^ this.addr[a + 1];
      h = Math.imul(h, 0x85ebca6b) ^ this.addr[a + 2];
      h = Math.imul(h, 0xc2b2ae35) ^ this.addr[a + 3];
    } else if (f === AF_UNIX) h = this.path[s] ^ 0x5bd1e995;
    else h = f;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return (h ^ (h >>> 13)) & this.#mask;
  }

  #same(r: number, s: number): boolean {
    const f = this.family[s];
    if (this.family[r] !== f) return false;
    if (f === AF_INET) {
      return this.port[r] === this.port[s] && this.addr[4 * r] === this.addr[4 * s];
    }
    if (f === AF_INET6) {
      const a = 4 * r, b = 4 * s;
      return this.port[r] === this.port[s] && this.addr[a] === this.addr[b] &&
        this.addr[a + 1] === this.addr[b + 1] && this.addr[a + 2] === this.addr[b + 2] &&
        this.addr[a + 3] === this.addr[b + 3];
    }
    if (f === AF_UNIX) return this.path[r] === this.path[s];
    return true;
  }

  add(s: number, failed: boolean, row: number): void {
    // rows come in bursts to one destination: try the previous row's entry first
    let i = this.#last;
    if (i >= 0 && this.#same(this.rep[i], s)) {
      this.count[i]++;
      if (failed) this.failed[i]++;
      return;
    }
    i = this.#hash(s);
    for (;;) {
      const r = this.rep[i];
      if (r < 0) break;
      if (this.#same(r, s)) {
        this.count[i]++;
        if (failed) this.failed[i]++;
        this.#last = i;
        return;
      }
      i = (i + 1) & this.#mask;
    }
    this.#last = i;
    this.rep[i] = s;
    this.count[i] = 1;
    this.failed[i] = failed ? 1 : 0;
    this.first[i] = row;
    if (++this.#used * 2 > this.#mask) this.#grow();
  }

  #grow(): void {
    const { rep, count, failed, first } = this;
    this.#last = -1;
    const size = rep.length * 2;
    this.#mask = size - 1;
    this.rep = new Int32Array(size).fill(-1);
    this.count = new Float64Array(size);
    this.failed = new Float64Array(size);
    this.first = new Float64Array(size);
    for (let j = 0; j < rep.length; j++) {
      if (rep[j] < 0) continue;
      let i = this.#hash(rep[j]);
      while (this.rep[i] >= 0) i = (i + 1) & this.#mask;
      this.rep[i] = rep[j];
      this.count[i] = count[j];
      this.failed[i] = failed[j];
      this.first[i] = first[j];
    }
  }
}

export function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const pids = c.pid as Uint32Array, comms = c.comm as Uint32Array, rets = c.ret as Int32Array;
  const families = c.family as Uint8Array, types = c.sock_type as Uint8Array;
  const protocols = c.protocol as Uint16Array, latency = c.latency as Float64Array;
  const addr = c.addr as Uint8Array;
  const byErrno = new CodeCounts(ERRNO_CODES); // 0: ret 0; n: -n
  const byProto = new CodeCounts(PROTO_OTHER + 65536);
  const byComm = new CodeCounts(store.strings.size);
  const oddResults = new Map<number, { n: number; first: number }>(); // ret > 0 or < -4095
  const dests = new DestinationCounts(
    families,
    c.port as Uint16Array,
    new Uint32Array(addr.buffer, addr.byteOffset, addr.length / 4),
    c.unix_path as Uint32Array,
  );
  const plan = scanPlan(table as unknown as EventTable, store, query);
  const latencies = new Float64Array(plan?.rows ?? 0);
  let n = 0, ok = 0, inProgress = 0, max = -Infinity;
  for (const [from, to] of plan?.ranges ?? []) {
    const pid = plan!.pid, comm = plan!.comm;
    for (let s = from; s < to; s++) {
      if ((pid >= 0 && pids[s] !== pid) || (comm >= 0 && comms[s] !== comm)) continue;
      const ret = rets[s];
      let bad = true;
      if (ret === 0) ok++, bad = false;
      else if (ret === EINPROGRESS) inProgress++, bad = false;
      if (ret <= 0 && ret > -ERRNO_CODES) byErrno.add(ret === 0 ? 0 : -ret, n); // not -0: a double index is a slow path
      else {
        const e = oddResults.get(ret);
        if (e) e.n++;
        else oddResults.set(ret, { n: 1, first: n });
      }
      const family = families[s], type = types[s], protocol = protocols[s];
      byProto.add(
        type === 0
          ? PROTO_UNKNOWN
          : family === AF_UNIX
          ? PROTO_UNIX
          : family === AF_INET || family === AF_INET6
          ? PROTO_IP + protocol
          : protocol === 0
          ? PROTO_UNKNOWN
          : PROTO_OTHER + protocol,
        n,
      );
      byComm.add(comms[s], n);
      dests.add(s, bad, n);
      const l = latency[s];
      latencies[n++] = l;
      if (l > max) max = l;
    }
  }
  const results = new Map<string, { n: number; first: number }>();
  for (const [ret, e] of oddResults) {
    const key = resultName(ret);
    const known = results.get(key);
    if (!known) results.set(key, { ...e });
    else known.n += e.n, known.first = Math.min(known.first, e.first);
  }
  const protoName = (code: number) =>
    code === PROTO_UNKNOWN
      ? "unknown"
      : code === PROTO_UNIX
      ? "UNIX"
      : code < PROTO_OTHER
      ? protocolName(AF_INET, code - PROTO_IP, 1)!
      : protocolName(0, code - PROTO_OTHER, 1)!;
  const topDestinations = new Map<string, { count: number; failed: number; first: number }>();
  for (let i = 0; i < dests.rep.length; i++) {
    if (dests.rep[i] < 0) continue;
    const name = destinationOf(table, dests.rep[i], store).destination;
    const e = topDestinations.get(name);
    if (!e) {
      topDestinations.set(name, {
        count: dests.count[i],
        failed: dests.failed[i],
        first: dests.first[i],
      });
    } else {
      e.count += dests.count[i];
      e.failed += dests.failed[i];
      e.first = Math.min(e.first, dests.first[i]);
    }
  }
  const [p50, p90, p99] = quantilesOf(latencies, n, [0.5, 0.9, 0.99]);
  const counts = (list: [string, { n: number }][]) =>
    Object.fromEntries(list.map(([k, v]) => [k, v.n]));
  return {
    total_attempts: n,
    successful: ok,
    in_progress: inProgress,
    failed: n - ok - inProgress,
    by_result: counts(byErrno.named((e) => resultName(-e), results)),
    by_protocol: counts(byProto.named(protoName)),
    by_command: counts(byComm.named((id) => store.strings.get(id))),
    top_destinations: [...topDestinations]
      .sort((a, b) => b[1].count - a[1].count || a[1].first - b[1].first)
      .slice(0, 20)
      .map(([destination, v]) => ({ destination, count: v.count, failed: v.failed })),
    latency_ns: { p50, p90, p99, max: n ? max : null },
  };
}

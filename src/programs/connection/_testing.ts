/**
 * Synthetic connection records for tests: what the BPF side writes for one connect(), laid out
 * with offsets read from the object's BTF (apart from the decoder's own `structLayout`) in a
 * buffer with junk everywhere the record does not write, as a drained ring has it.
 *
 * @module
 */

import { readAsset } from "../../assets.ts";
import { BpfObject } from "../../ffi/shim.ts";
import { btfOffsets, recordArea } from "../_testing.ts";

const AF_UNIX = 1;

/** What the kernel side writes into one record. */
export interface RawRecord {
  tsNs: bigint;
  latencyNs: bigint;
  cgroupId: bigint;
  pid: number;
  tid: number;
  uid: number;
  ret: number;
  family: number;
  port: number;
  sockType: number;
  protocol: number;
  addr?: number[];
  comm: string;
  /** sun_path bytes as the caller passed them (AF_UNIX only) */
  unixPath?: number[];
}

const encoder = new TextEncoder();

/** The compiled connection object. */
export function openObject(): BpfObject {
  return new BpfObject(readAsset("bpf/connection.bpf.o"), "connection");
}

/** The fields of struct connection_event (the IP record). */
export const IP_FIELDS = [
  "ts_ns",
  "latency_ns",
  "cgroup_id",
  "sock_id",
  "pid",
  "tid",
  "uid",
  "ret",
  "family",
  "port",
  "sock_type",
  "protocol",
  "addr",
  "comm",
  "unix_path_len",
] as const;

/** Offsets of both records: the IP one (`size`) and the AF_UNIX one with the path (`unixSize`). */
function offsets(obj: BpfObject) {
  const ip = btfOffsets(obj, "connection_event", IP_FIELDS);
  const unix = btfOffsets(obj, "connection_unix_event", ["unix_path"]);
  return { at: { ...ip.at, unix_path: unix.at.unix_path }, size: ip.size, unixSize: unix.size };
}

/**
 * `rec` as the ring hands it over: an AF_UNIX connect as the longer record with the path after
 * the event, any other as the short one.
 */
export function encode(obj: BpfObject, rec: RawRecord) {
  const { at, size: ipSize, unixSize } = offsets(obj);
  const size = rec.family === AF_UNIX ? unixSize : ipSize;
  const { bytes, view, r } = recordArea(size);
  view.setBigUint64(r + at.ts_ns, rec.tsNs, true);
  view.setBigUint64(r + at.latency_ns, rec.latencyNs, true);
  view.setBigUint64(r + at.cgroup_id, rec.cgroupId, true);
  view.setUint32(r + at.pid, rec.pid, true);
  view.setUint32(r + at.tid, rec.tid, true);
  view.setUint32(r + at.uid, rec.uid, true);
  view.setInt32(r + at.ret, rec.ret, true);
  view.setUint16(r + at.family, rec.family, true);
  view.setUint16(r + at.port, rec.port, true);
  view.setUint16(r + at.sock_type, rec.sockType, true);
  view.setUint16(r + at.protocol, rec.protocol, true);
  bytes.fill(0, r + at.addr, r + at.addr + 16);
  bytes.set(rec.addr ?? [], r + at.addr);
  const comm = encoder.encode(rec.comm);
  bytes.set(comm, r + at.comm);
  bytes[r + at.comm + comm.length] = 0; // the rest of comm stays junk after the NUL
  if (size === unixSize) {
    bytes.fill(0, r + at.unix_path, r + at.unix_path + 108);
    bytes.set(rec.unixPath ?? [], r + at.unix_path);
  }
  view.setUint32(r + at.unix_path_len, rec.unixPath?.length ?? 0, true);
  return { view, bytes, offset: r, size };
}

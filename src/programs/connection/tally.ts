/**
 * The connection program's counts kept at ingest: command, protocol and result packed into one
 * number, the key of `store.tally("connection")`.
 *
 * @module
 */

import { AF_INET, AF_INET6, AF_UNIX, protocolName, resultName } from "../../net/names.ts";

/** Packs command, protocol and errno into one tally key (see {@linkcode unpackKey}). */
export function packKey(
  comm: number,
  family: number,
  sockType: number,
  protocol: number,
  ret: number,
) {
  let proto = 511; // no socket
  if (sockType !== 0) {
    if (family === AF_UNIX) proto = 510;
    else if (family === AF_INET || family === AF_INET6) proto = protocol < 508 ? protocol : 509;
    else proto = 508;
  }
  const errno = ret < 0 ? Math.min(-ret, 4095) : 0;
  return comm * 2097152 + proto * 4096 + errno;
}

/** The command id, protocol name and result of a tally key. */
export function unpackKey(key: number) {
  const comm = Math.floor(key / 2097152);
  const proto = Math.floor(key / 4096) % 512;
  const errno = key % 4096;
  const protocol = proto === 511
    ? "unknown"
    : proto === 510
    ? "UNIX"
    : proto >= 508
    ? "other"
    : protocolName(AF_INET, proto, 1) ?? "unknown";
  return { comm, protocol, result: resultName(-errno) };
}

/**
 * Filter and group fields several programs share, each declared once: the attribution ones,
 * address family and protocol names, command and pid. A program's folder picks the ones its
 * events have and binds them to its columns.
 *
 * @module
 */

import { AF_INET, AF_INET6, AF_UNIX } from "../net/names.ts";
import type { Store } from "../store/mod.ts";
import {
  attributionFilters,
  attributionGroups,
  type FilterField,
  type GroupField,
  namesParse,
  simpleGroup,
} from "./filter.ts";

/** The filters every program has: `unit`, `container`, `container_runtime`, `cgroup`. */
export function commonFilters(): Record<string, FilterField> {
  return attributionFilters();
}

/** The group keys every program has: the attribution ones, `command` and `pid`. */
export function commonGroups(): Record<string, GroupField> {
  return {
    ...attributionGroups(),
    command: simpleGroup("the command", (table, store: Store) => {
      const comm = table.cols.comm as Uint32Array;
      return (s) => store.strings.get(comm[s]);
    }),
    pid: simpleGroup("the process id", (table) => {
      const pid = table.cols.pid as Uint32Array;
      return (s) => pid[s];
    }),
  };
}

/** `family=` values: the kernel's names, and short ones; codes are AF_* numbers. */
export const familyParse = namesParse({
  AF_INET,
  AF_INET6,
  AF_UNIX,
  inet: AF_INET,
  inet6: AF_INET6,
  ipv4: AF_INET,
  ipv6: AF_INET6,
  unix: AF_UNIX,
});

/** The code of `protocol=UNIX`, and of a socket whose protocol is not known. */
export const PROTO_UNIX = 60001, PROTO_UNKNOWN = 60000;

/** `protocol=` values: IP protocols by name (codes are their numbers) and UNIX. */
export const protocolParse = namesParse({
  TCP: 6,
  UDP: 17,
  ICMP: 1,
  ICMPV6: 58,
  SCTP: 132,
  UDPLITE: 136,
  MPTCP: 262,
  RAW: 255,
  UNIX: PROTO_UNIX,
  unknown: PROTO_UNKNOWN,
});

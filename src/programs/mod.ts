/**
 * The one list of monitoring programs. Adding a program: `bpf/<name>.bpf.c` + `bpf/<name>.h`,
 * `src/programs/<name>/mod.ts`, and one line here.
 *
 * @module
 */

import { cgroup } from "./cgroup/mod.ts";
import { connection } from "./connection/mod.ts";
import { dns } from "./dns/mod.ts";
import { packetDrop } from "./packet_drop/mod.ts";
import { tcpLife } from "./tcp_life/mod.ts";
import type { Program } from "./program.ts";

export type { Program } from "./program.ts";

/** Checks names are unique and well formed; returns the list as a name -> program map. */
export function registry(list: readonly Program[]): ReadonlyMap<string, Program> {
  const byName = new Map<string, Program>();
  for (const program of list) {
    if (!/^[a-z][a-z0-9_]*$/.test(program.name)) {
      throw new TypeError(`program name '${program.name}' must be lowercase snake_case`);
    }
    if (byName.has(program.name)) {
      throw new TypeError(`program '${program.name}' is registered twice`);
    }
    byName.set(program.name, program);
  }
  return byName;
}

/**
 * Every program the server knows, in start order (and drain order: `cgroup` first, so each drain
 * knows the cgroups made before it resolves the other programs' events).
 */
export const programs: ReadonlyMap<string, Program> = registry([
  cgroup,
  connection,
  packetDrop,
  tcpLife,
  dns,
]);

/**
 * Offsets of an event struct, read from the BPF object's BTF: the C header is the only place the
 * layout is written. The decoder states the size it expects of each field; a mismatch is an error.
 *
 * @module
 */

import type { BpfObject } from "../ffi/shim.ts";

/**
 * The byte offsets of `fields` in `struct name`, checked against the sizes given.
 *
 * @example
 * ```ts
 * const at = structLayout(obj, "connection_event", { ts_ns: 8, pid: 4 });
 * view.getUint32(record + at.pid, true);
 * ```
 */
export function structLayout<F extends Record<string, number>>(
  obj: BpfObject,
  name: string,
  fields: F,
): { [K in keyof F]: number } & { $size: number } {
  const out: Record<string, number> = { $size: obj.structSize(name) };
  for (const [field, size] of Object.entries(fields)) {
    const member = obj.member(name, field);
    if (member.size !== size) {
      throw new TypeError(
        `struct ${name}.${field} is ${member.size} bytes in the BPF object, the decoder reads ${size}`,
      );
    }
    out[field] = member.offset;
  }
  // Adding properties one by one under computed names leaves V8 with a dictionary-mode object,
  // where every `at.field` read on the decoders' hot path is a hash lookup; the spread copy is a
  // fast-properties object whose reads are plain loads (bench/decode_bench.ts: about 2x).
  return { ...out } as { [K in keyof F]: number } & { $size: number };
}

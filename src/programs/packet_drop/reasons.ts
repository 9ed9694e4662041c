/**
 * Drop reason names of the running kernel, read from its BTF (`enum skb_drop_reason`): numbers
 * differ between kernels, names do not.
 *
 * @module
 */

import { kernelEnum } from "../../ffi/shim.ts";

/** Reasons by code, with the kernel's `SKB_DROP_REASON_` prefix taken off. */
export class DropReasons {
  readonly #names: Map<number, string>;
  readonly #codes: Map<string, number>;

  constructor(enumEntries: Map<number, string>) {
    this.#names = new Map();
    this.#codes = new Map();
    for (const [code, raw] of enumEntries) {
      if (raw === "SKB_DROP_REASON_SUBSYS_MASK") continue; // a bit mask, no reason
      const name = raw.startsWith("SKB_DROP_REASON_")
        ? raw.slice("SKB_DROP_REASON_".length)
        : raw.replace(/^SKB_/, "");
      this.#names.set(code, name);
      this.#codes.set(name, code);
    }
  }

  /** The name of a code, or `UNKNOWN_<code>`. */
  name(code: number): string {
    return this.#names.get(code) ?? `UNKNOWN_${code}`;
  }

  /** The code of a name (`NO_SOCKET`), if the kernel has it. */
  code(name: string): number | undefined {
    return this.#codes.get(name);
  }

  /** Every reason, by code. */
  list(): { code: number; name: string }[] {
    return [...this.#names].sort((a, b) => a[0] - b[0]).map(([code, name]) => ({ code, name }));
  }
}

let shared: DropReasons | undefined;

/** The running kernel's reasons (read once). */
export function kernelDropReasons(): DropReasons {
  return shared ??= new DropReasons(kernelEnum("skb_drop_reason"));
}

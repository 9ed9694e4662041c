/**
 * Drop reason names of the running kernel, read from its BTF (`enum skb_drop_reason`): numbers
 * differ between kernels, names do not.
 *
 * @module
 */

import { kernelBtfHas, kernelEnum } from "../../ffi/shim.ts";

/** `reason` of a drop on a kernel whose skb:kfree_skb gives none (DROP_REASON_UNKNOWN). */
export const REASON_UNKNOWN = 0xffffffff;

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

  /** Whether the kernel has drop reasons at all (an enum skb_drop_reason in its BTF). */
  get available(): boolean {
    return this.#names.size > 0;
  }

  /** The name of a code, `UNKNOWN_<code>` for a code the enum lacks, or null for none given. */
  name(code: number): string | null {
    if (code === REASON_UNKNOWN) return null;
    return this.#names.get(code) ?? `UNKNOWN_${code}`;
  }

  /** The name of a code, or `unknown` where the kernel gave none (a summary or label key). */
  label(code: number): string {
    return this.name(code) ?? "unknown";
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

/** The running kernel's reasons (read once); none on a kernel without the enum. */
export function kernelDropReasons(): DropReasons {
  return shared ??= new DropReasons(
    kernelBtfHas("enum skb_drop_reason") ? kernelEnum("skb_drop_reason") : new Map(),
  );
}

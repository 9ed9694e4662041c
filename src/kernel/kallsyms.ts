/**
 * Kernel addresses to `function+0xoffset`, from `/proc/kallsyms` (read once, on first use),
 * looked up by binary search and cached per address.
 *
 * @module
 */

/** Sorted kernel text symbols. */
export class Kallsyms {
  readonly #addrs: BigUint64Array;
  readonly #names: string[];
  readonly #cache = new Map<bigint, string | null>();

  /** Parses the text of /proc/kallsyms (text symbols only). */
  constructor(text: string) {
    const entries: [bigint, string][] = [];
    for (const line of text.split("\n")) {
      // "ffffffff81000000 T _stext" or "... t name [module]"
      const first = line.indexOf(" ");
      if (first < 0) continue;
      const type = line[first + 1];
      if (type !== "t" && type !== "T") continue;
      const addr = BigInt("0x" + line.slice(0, first));
      if (addr === 0n) continue;
      let name = line.slice(first + 3);
      const tab = name.indexOf("\t");
      if (tab >= 0) name = name.slice(0, tab);
      entries.push([addr, name]);
    }
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#addrs = BigUint64Array.from(entries.map((e) => e[0]));
    this.#names = entries.map((e) => e[1]);
  }

  /** How many symbols are known (0 when addresses are hidden by kptr_restrict). */
  get size(): number {
    return this.#names.length;
  }

  /** `name+0xoff` of the symbol containing `addr`, or null. */
  resolve(addr: bigint): string | null {
    const cached = this.#cache.get(addr);
    if (cached !== undefined) return cached;
    const addrs = this.#addrs;
    let lo = 0, hi = addrs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (addrs[mid] <= addr) lo = mid + 1;
      else hi = mid;
    }
    const result = lo === 0
      ? null
      : `${this.#names[lo - 1]}+0x${(addr - addrs[lo - 1]).toString(16)}`;
    if (this.#cache.size > 100_000) this.#cache.clear();
    this.#cache.set(addr, result);
    return result;
  }
}

let shared: Kallsyms | undefined;

/** The running kernel's symbols, read on first use (an empty table when unreadable). */
export function kernelSymbols(): Kallsyms {
  if (!shared) {
    let text = "";
    try {
      text = Deno.readTextFileSync("/proc/kallsyms");
    } catch {
      // no symbols: locations stay addresses
    }
    shared = new Kallsyms(text);
  }
  return shared;
}

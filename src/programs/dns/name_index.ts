/**
 * Which name a process looked up to get an address: every address of an answered A or AAAA
 * query, with the name asked, the asker (pid, cgroup) and when the answer came. Connection and
 * TCP events ask it for the name of their destination. Bounded: the oldest entries go first.
 *
 * @module
 */

/** How long after an answer a connection to one of its addresses is joined to its name (ms). */
export const NAME_WINDOW_MS = 5 * 60_000;
/** Addresses remembered at most (each answer address is one entry). */
export const MAX_ENTRIES = 65536;

/** cgroup v2 ids that say nothing about who asked (no id, the root). */
const NO_CGROUP = 1;

interface Entry<N> {
  ip: string;
  name: N;
  pid: number;
  cgroupId: number;
  tsMs: number;
}

/** Who connected, and when: what a name is looked up for. */
export interface Asker {
  pid: number;
  cgroupId: number;
  /** Unix ms of the connection. */
  tsMs: number;
}

/** Entries kept per address: the newest askers. */
const PER_IP = 8;

/**
 * Answer addresses by IP, newest last. Once {@linkcode MAX_ENTRIES} are held, the addresses
 * first answered longest ago are evicted first (a map in insertion order: no reordering per
 * answer); an address keeps its {@linkcode PER_IP} newest askers.
 */
export class NameIndex<N = string> {
  /** In the order first answered. */
  readonly #byIp = new Map<string, Entry<N>[]>();
  #size = 0;
  readonly #max: number;

  constructor(max = MAX_ENTRIES) {
    this.#max = max;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Remembers that `name`, asked by `pid` in `cgroupId`, was answered with `ip` at `tsMs`. */
  add(ip: string, name: N, pid: number, cgroupId: number, tsMs: number): void {
    let list = this.#byIp.get(ip);
    if (!list) this.#byIp.set(ip, list = []);
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e.pid === pid && e.name === name && e.cgroupId === cgroupId) {
        if (i === list.length - 1) { // asked again, the newest already: only its time moves
          e.tsMs = tsMs;
          return;
        }
        list.splice(i, 1); // asked again: the newer answer replaces it
        this.#size--;
        break;
      }
    }
    list.push({ ip, name, pid, cgroupId, tsMs });
    this.#size++;
    if (list.length > PER_IP) {
      list.shift();
      this.#size--;
    }
    while (this.#size > this.#max) {
      const order = this.#byIp.entries();
      let oldest = order.next().value!;
      if (oldest[0] === ip) { // the address just answered stays
        const next = order.next();
        if (next.done) break;
        oldest = next.value;
      }
      this.#byIp.delete(oldest[0]);
      this.#size -= oldest[1].length;
    }
  }

  /**
   * The name whose answer held `ip`, answered to the same process at most
   * {@linkcode NAME_WINDOW_MS} before `asker.tsMs`, else to a process of the same cgroup (not
   * the root), newest first; null when none was.
   */
  nameOf(ip: string, asker: Asker): N | null {
    const list = this.#byIp.get(ip);
    if (!list) return null;
    let byCgroup: N | null = null;
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i];
      if (e.tsMs > asker.tsMs) continue;
      if (asker.tsMs - e.tsMs > NAME_WINDOW_MS) break;
      if (asker.pid !== 0 && e.pid === asker.pid) return e.name;
      if (byCgroup === null && asker.cgroupId > NO_CGROUP && e.cgroupId === asker.cgroupId) {
        byCgroup = e.name;
      }
    }
    return byCgroup;
  }
}

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

interface Entry {
  ip: string;
  name: string;
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
 * Answer addresses by IP, newest last. The addresses answered least recently are evicted first
 * once {@linkcode MAX_ENTRIES} are held; an address keeps its {@linkcode PER_IP} newest askers.
 */
export class NameIndex {
  /** In the order last answered (an address answered again moves to the end). */
  readonly #byIp = new Map<string, Entry[]>();
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
  add(ip: string, name: string, pid: number, cgroupId: number, tsMs: number): void {
    let list = this.#byIp.get(ip);
    if (list) {
      this.#byIp.delete(ip); // moves to the end
      const same = list.findIndex((e) =>
        e.name === name && e.pid === pid && e.cgroupId === cgroupId
      );
      if (same >= 0) {
        list.splice(same, 1);
        this.#size--;
      }
    } else list = [];
    this.#byIp.set(ip, list);
    list.push({ ip, name, pid, cgroupId, tsMs });
    this.#size++;
    if (list.length > PER_IP) {
      list.shift();
      this.#size--;
    }
    while (this.#size > this.#max) {
      const [oldest, entries] = this.#byIp.entries().next().value!;
      this.#byIp.delete(oldest);
      this.#size -= entries.length;
    }
  }

  /**
   * The name whose answer held `ip`, answered to the same process at most
   * {@linkcode NAME_WINDOW_MS} before `asker.tsMs`, else to a process of the same cgroup (not
   * the root), newest first; null when none was.
   */
  nameOf(ip: string, asker: Asker): string | null {
    const list = this.#byIp.get(ip);
    if (!list) return null;
    let byCgroup: string | null = null;
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

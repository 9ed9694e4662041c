/**
 * Cgroup ids to paths: a scan of the cgroup v2 tree at start, the cgroups created and removed
 * since (the `cgroup` program's `cgroup:cgroup_mkdir` and `cgroup_rmdir` records), and a scan
 * again when an id is not known (rate-limited). A removed cgroup stays known for
 * {@linkcode CgroupCacheOptions.retentionMs}, so an event stored after its process's cgroup is
 * gone still resolves.
 *
 * The id of a cgroup v2 directory is its inode number (`bpf_get_current_cgroup_id()`, the
 * tracepoints' `id`): a scan reads it with stat().
 *
 * @module
 */

import { cgroup2Root } from "../kernel/cgroup.ts";

/** How a {@linkcode CgroupCache} behaves. */
export interface CgroupCacheOptions {
  /** Mount point of the cgroup v2 hierarchy (default: from /proc/self/mountinfo; null: none). */
  root?: string | null;
  /** How long a removed cgroup stays known, ms (default 10 minutes). */
  retentionMs?: number;
  /** Removed cgroups kept at most (default 16384): the oldest go first beyond it. */
  maxRemoved?: number;
  /** The shortest time between two scans for unknown ids, ms (default 250). */
  rescanIntervalMs?: number;
  /** Current time in Unix ms (tests set it). */
  now?: () => number;
}

interface Entry {
  path: string;
  /** Unix ms when it was removed; Infinity while it exists. */
  removedAt: number;
}

/** Directories deeper than this below the root are not scanned. */
const MAX_DEPTH = 32;
/** An id a scan did not find is not scanned for again for this long, ms. */
const NEGATIVE_MS = 10_000;

/** Paths of cgroup v2 ids, kept up to date by scans and by what the kernel reports. */
export class CgroupCache {
  /** The mount point scanned, or null when no cgroup v2 hierarchy is mounted. */
  readonly root: string | null;
  readonly retentionMs: number;
  readonly #maxRemoved: number;
  readonly #rescanMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<number, Entry>();
  /** Removed ids in the order they were removed (pruned from the front). */
  #removed: number[] = [];
  #removedHead = 0;
  #misses = new Map<number, number>();
  #lastScan = -Infinity;
  /** Scans made so far, and when the kernel last reported a change. */
  scans = 0;
  reported = 0;

  constructor(options: CgroupCacheOptions = {}) {
    this.root = options.root === undefined ? cgroup2Root() : options.root;
    this.retentionMs = options.retentionMs ?? 600_000;
    this.#maxRemoved = options.maxRemoved ?? 16384;
    this.#rescanMs = options.rescanIntervalMs ?? 250;
    this.#now = options.now ?? Date.now;
  }

  /** Cgroups known: those that exist and those removed within the retention. */
  get size(): number {
    return this.#entries.size;
  }

  /** Removed cgroups still known. */
  get removedKnown(): number {
    return this.#removed.length - this.#removedHead;
  }

  /**
   * Reads the whole tree: every directory's inode number and path. Cgroups known as existing
   * that the scan does not find are taken as removed now. Returns how many it found.
   */
  scan(): number {
    this.scans++;
    const now = this.#now();
    this.#lastScan = now;
    if (this.root === null) return 0;
    const seen = new Set<number>();
    const walk = (dir: string, rel: string, depth: number) => {
      let ino: number | null;
      try {
        ino = Deno.statSync(dir).ino;
      } catch {
        return; // removed meanwhile
      }
      if (ino === null) return;
      seen.add(ino);
      const known = this.#entries.get(ino);
      if (!known || known.path !== rel || known.removedAt !== Infinity) {
        this.#entries.set(ino, { path: rel, removedAt: Infinity });
      }
      if (depth >= MAX_DEPTH) return;
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(dir)];
      } catch {
        return;
      }
      for (const entry of entries) {
        if (!entry.isDirectory) continue;
        walk(
          `${dir}/${entry.name}`,
          rel === "/" ? `/${entry.name}` : `${rel}/${entry.name}`,
          depth + 1,
        );
      }
    };
    walk(this.root, "/", 0);
    for (const [id, entry] of this.#entries) {
      if (entry.removedAt === Infinity && !seen.has(id)) this.#markRemoved(id, entry, now);
    }
    this.#prune(now);
    return seen.size;
  }

  /** A cgroup the kernel reported created (`path` relative to the v2 root). */
  created(id: number, path: string): void {
    this.reported++;
    this.#entries.set(id, { path: path || "/", removedAt: Infinity });
    this.#misses.delete(id);
  }

  /** A cgroup the kernel reported removed at `tsMs` (its path, should it not be known yet). */
  removed(id: number, tsMs: number, path?: string): void {
    this.reported++;
    let entry = this.#entries.get(id);
    if (!entry && path !== undefined) {
      entry = { path: path || "/", removedAt: Infinity };
      this.#entries.set(id, entry);
    }
    if (entry && entry.removedAt === Infinity) this.#markRemoved(id, entry, tsMs);
    this.#prune(this.#now());
  }

  /** Whether the cgroup of `id` has been removed (and is kept for the retention). */
  isRemoved(id: number): boolean {
    const entry = this.#entries.get(id);
    return entry !== undefined && entry.removedAt !== Infinity;
  }

  /**
   * The path of cgroup `id` relative to the v2 root (`/` for the root), or null when it is not
   * known even after a scan (an id not seen is scanned for at most once per
   * {@linkcode NEGATIVE_MS}, and scans are at least `rescanIntervalMs` apart).
   */
  path(id: number): string | null {
    const entry = this.#entries.get(id);
    if (entry) return entry.path;
    if (id === 0 || this.root === null) return null;
    const now = this.#now();
    const missed = this.#misses.get(id);
    if (missed !== undefined && now - missed < NEGATIVE_MS) return null;
    if (now - this.#lastScan < this.#rescanMs) {
      this.#misses.set(id, now - NEGATIVE_MS + this.#rescanMs); // try again after the interval
      return null;
    }
    this.scan();
    const found = this.#entries.get(id);
    if (found) return found.path;
    this.#misses.set(id, now);
    if (this.#misses.size > 65536) this.#misses.clear();
    return null;
  }

  #markRemoved(id: number, entry: Entry, at: number): void {
    entry.removedAt = at;
    this.#removed.push(id);
  }

  /** Forgets removed cgroups past the retention, and the oldest beyond the bound. */
  #prune(now: number): void {
    while (this.#removedHead < this.#removed.length) {
      const id = this.#removed[this.#removedHead];
      const entry = this.#entries.get(id);
      const stale = !entry || entry.removedAt === Infinity; // created again meanwhile
      const old = entry !== undefined && now - entry.removedAt > this.retentionMs;
      const over = this.removedKnown > this.#maxRemoved;
      if (!stale && !old && !over) break;
      if (!stale) this.#entries.delete(id);
      this.#removedHead++;
    }
    if (this.#removedHead > 4096 && this.#removedHead * 2 > this.#removed.length) {
      this.#removed = this.#removed.slice(this.#removedHead);
      this.#removedHead = 0;
    }
  }
}

let host: CgroupCache | undefined;

/** This host's cache (scanned on first use). */
export function hostCgroups(): CgroupCache {
  if (!host) {
    host = new CgroupCache();
    host.scan();
  }
  return host;
}

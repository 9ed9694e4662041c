/**
 * Attribution of events to cgroups, units and containers, shared by every program: each event
 * row holds an attribution id (a `u32` column, {@linkcode ATTRIBUTION_COLUMNS}), resolved from
 * the event's cgroup id as the row is stored; the id indexes a table of resolved cgroups (path,
 * unit, container) kept per store. Id 0 is "not known" (no cgroup id, or one no scan found):
 * its fields are null.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import type { Store } from "../store/mod.ts";
import { type CgroupCache, hostCgroups } from "./cache.ts";
import { describeCgroup } from "./path.ts";

/** The column every program's table adds for attribution. */
export const ATTRIBUTION_COLUMNS = { attr: "u32" } as const;

/** The JSON fields every event gets. */
export const AttributionFields = {
  cgroup_path: z.string().nullable().openapi({
    description:
      "the cgroup (v2) of the process, relative to the hierarchy's root; null when the cgroup id is not known (see /api/capabilities)",
    example: "/system.slice/nginx.service",
  }),
  unit: z.string().nullable().openapi({
    description: "the systemd unit the process runs in (the deepest unit on cgroup_path), or null",
    example: "nginx.service",
  }),
  container_id: z.string().nullable().openapi({
    description:
      "the container (64 hex digits) from cgroup_path: Docker, containerd, CRI-O, Podman or kubepods names; null outside containers",
    example: "4f1c2e0b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b",
  }),
  container_runtime: z.string().nullable().openapi({
    description:
      "docker, containerd, cri-o, podman, or cri (a kubepods path that does not name the runtime); null outside containers",
    example: "docker",
  }),
};

/** An event's attribution as JSON. */
export interface AttributionJson {
  cgroup_path: string | null;
  unit: string | null;
  container_id: string | null;
  container_runtime: string | null;
}

const UNKNOWN: AttributionJson = Object.freeze({
  cgroup_path: null,
  unit: null,
  container_id: null,
  container_runtime: null,
});

/** Resolved cgroups of one store, by attribution id. */
export class Attributions {
  readonly cache: CgroupCache;
  /** By attribution id (0: not known). */
  readonly entries: AttributionJson[] = [UNKNOWN];
  readonly cgroupIds: number[] = [0];
  #byCgroup = new Map<number, number>();
  #lastCgroup = -1;
  #lastId = 0;
  /** The one before the last (rows of two cgroups interleave). */
  #prevCgroup = -1;
  #prevId = 0;
  #counts = new Float64Array(256);
  #touched: number[] = [];

  constructor(cache: CgroupCache) {
    this.cache = cache;
  }

  /** Attribution ids given out so far (ids are below this). */
  get size(): number {
    return this.entries.length;
  }

  /** The attribution id of cgroup `cgroupId` now (0 when it cannot be resolved). */
  idOf(cgroupId: number): number {
    if (cgroupId === this.#lastCgroup) return this.#lastId;
    let id: number | undefined;
    if (cgroupId === this.#prevCgroup) id = this.#prevId;
    else id = this.#byCgroup.get(cgroupId);
    if (id === undefined) {
      const path = cgroupId === 0 ? null : this.cache.path(cgroupId);
      if (path === null) return 0; // not remembered: a later scan may find it
      const owner = describeCgroup(path);
      id = this.entries.length;
      this.entries.push(Object.freeze({ cgroup_path: path, ...owner }));
      this.cgroupIds.push(cgroupId);
      this.#byCgroup.set(cgroupId, id);
    }
    this.#prevCgroup = this.#lastCgroup;
    this.#prevId = this.#lastId;
    this.#lastCgroup = cgroupId;
    this.#lastId = id;
    return id;
  }

  /**
   * Fills `attr[from, to)` from the cgroup ids in `cgroups[from, to)` (a batch decoder's rows)
   * and adds the rows of each attribution id to `tally` (the metrics' counts by unit). Runs of
   * one cgroup cost one comparison a row.
   */
  fill(
    cgroups: ArrayLike<number>,
    attr: Uint32Array,
    range: { from: number; to: number; tally?: Map<number, number> },
  ): void {
    const { from, to, tally } = range;
    // counts by id gather in an array (ids are dense) and go into the Map once per call
    let counts = this.#counts;
    const touched = this.#touched;
    for (let s = from; s < to;) {
      const cgroup = cgroups[s];
      const id = this.idOf(cgroup);
      let end = s + 1;
      while (end < to && cgroups[end] === cgroup) end++;
      if (end - s > 8) attr.fill(id, s, end);
      else for (let i = s; i < end; i++) attr[i] = id;
      if (tally) {
        if (id >= counts.length) {
          const grown = new Float64Array(Math.max(2 * counts.length, id + 1));
          grown.set(counts);
          counts = this.#counts = grown;
        }
        if (counts[id] === 0) touched.push(id);
        counts[id] += end - s;
      }
      s = end;
    }
    if (tally) {
      for (const id of touched) {
        tally.set(id, (tally.get(id) ?? 0) + counts[id]);
        counts[id] = 0;
      }
      touched.length = 0;
    }
  }

  /** The JSON fields of attribution id `id`. */
  json(id: number): AttributionJson {
    return this.entries[id] ?? UNKNOWN;
  }

  /** One flag per attribution id: whether `test` holds for it. */
  mask(test: (a: AttributionJson) => boolean): Uint8Array {
    const out = new Uint8Array(this.entries.length);
    for (let i = 0; i < out.length; i++) out[i] = test(this.entries[i]) ? 1 : 0;
    return out;
  }
}

const perStore = new WeakMap<Store, Attributions>();

/** The store tally of a program's events by attribution id (the metrics' `unit` label). */
export function unitTally(store: Store, program: string): Map<number, number> {
  return store.tally(`${program}/attribution`);
}

/** Adds one event of attribution `id` to a {@linkcode unitTally}. */
export function countAttribution(tally: Map<number, number>, id: number): void {
  tally.set(id, (tally.get(id) ?? 0) + 1);
}

/**
 * The attributions of `store`, created on first use with `cache` (default: this host's cgroups,
 * scanned then).
 */
export function attributionOf(store: Store, cache?: CgroupCache): Attributions {
  let a = perStore.get(store);
  if (!a) perStore.set(store, a = new Attributions(cache ?? hostCgroups()));
  return a;
}

/** Counts of `by_unit` and `by_container` of a summary from counts by attribution id. */
export function attributionCounts(
  store: Store,
  counts: ReadonlyMap<number, number>,
  limit = 50,
): { by_unit: Record<string, number>; by_container: Record<string, number> } {
  const a = attributionOf(store);
  const units = new Map<string, number>();
  const containers = new Map<string, number>();
  for (const [id, n] of counts) {
    const j = a.json(id);
    const unit = j.unit ?? "none", container = j.container_id ?? "none";
    units.set(unit, (units.get(unit) ?? 0) + n);
    containers.set(container, (containers.get(container) ?? 0) + n);
  }
  return { by_unit: bounded(units, limit), by_container: bounded(containers, limit) };
}

/** The `limit` largest counts, largest first, the rest summed as `other`. */
function bounded(counts: Map<string, number>, limit: number): Record<string, number> {
  const sorted = [...counts].sort((a, b) =>
    b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
  );
  const out = Object.fromEntries(sorted.slice(0, limit));
  const rest = sorted.slice(limit).reduce((sum, [, n]) => sum + n, 0);
  if (rest > 0) out.other = (out.other ?? 0) + rest;
  return out;
}

/** The summary fields every program's summary gets (documented once). */
export const AttributionSummaryFields = {
  by_unit: z.record(z.string(), z.number().int().nonnegative()).openapi({
    description:
      "events by systemd unit (`none`: no unit or cgroup not known); the 50 largest, the rest as `other`",
    example: { "nginx.service": 12, none: 3 },
  }),
  by_container: z.record(z.string(), z.number().int().nonnegative()).openapi({
    description:
      "events by container id (`none`: not in a container); the 50 largest, the rest as `other`",
  }),
};

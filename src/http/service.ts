/**
 * What the routes answer, independent of HTTP: event listings and summaries over the store.
 *
 * @module
 */

import type { ProgramManager } from "../programs/manager.ts";
import { compileWhere, topGroups, type Where } from "../programs/filter.ts";
import type { Program } from "../programs/program.ts";
import { type EventFilter, forEachRow, isoMicros, newestRows } from "../programs/query.ts";
import type { Store } from "../store/mod.ts";
import { filterEcho } from "./filters.ts";
import { DEFAULT_DURATION, DEFAULT_LIMIT } from "./params.ts";

/** What every route module gets. */
export interface AppContext {
  programs: ReadonlyMap<string, Program>;
  manager: ProgramManager;
  store: Store;
  /** Serve /docs (Swagger UI). */
  docs: boolean;
  /** Unix ms when the server started. */
  startedAt: number;
  /** How many commands get their own label in /metrics (default 20). */
  metricsTopCommands?: number;
  /** Current time in Unix ms (tests may fix it). */
  now?: () => number;
}

/**
 * The newest events of the given programs that match, merged newest first. A program without
 * a field of `where` has no event that matches.
 */
export function listEvents(
  ctx: AppContext,
  names: readonly string[],
  filter: EventFilter & { limit?: number; where?: Where },
) {
  ctx.manager.refresh();
  const limit = filter.limit ?? DEFAULT_LIMIT;
  const picked: { ts: number; program: Program; slot: number }[] = [];
  let truncated = false;
  const where = filter.where ?? new Map();
  for (const name of names) {
    const program = ctx.programs.get(name)!;
    const table = ctx.store.get(name);
    if (!table) continue;
    const match = compileWhere(program.filters, table, ctx.store, where);
    const slots = newestRows(table, ctx.store, { ...filter, match }, limit + 1);
    if (slots.length > limit) truncated = true;
    for (const slot of slots.slice(0, limit)) {
      picked.push({ ts: table.cols.ts[slot], program, slot });
    }
  }
  picked.sort((a, b) => b.ts - a.ts);
  if (picked.length > limit) truncated = true;
  const events = picked.slice(0, limit).map(({ program, slot }) =>
    program.toJson(ctx.store.get(program.name)!, slot, ctx.store)
  );
  return { count: events.length, limit, truncated, filter: filterEcho(filter, where), events };
}

/** A program's summary over the last `duration` seconds, with the fields every summary has. */
export function summarize(
  ctx: AppContext,
  name: string,
  query: {
    pid?: number;
    command?: string;
    duration?: number;
    duration_seconds?: number;
    where?: Where;
  },
) {
  const program = ctx.programs.get(name)!;
  const table = ctx.store.get(name)!;
  ctx.manager.refresh();
  const duration = query.duration ?? query.duration_seconds ?? DEFAULT_DURATION;
  const until = (ctx.now ?? Date.now)();
  const since = until - duration * 1000;
  const status = ctx.manager.status(name);
  const where = query.where ?? new Map();
  const match = compileWhere(program.filters, table, ctx.store, where);
  const filter = { pid: query.pid, command: query.command, since, until, match };
  const counters = ctx.store.counters(name);
  return {
    program: name,
    since: isoMicros(since),
    until: isoMicros(until),
    duration_seconds: duration,
    pid: query.pid ?? null,
    command: query.command ?? null,
    filter: filterEcho(query, where),
    window_complete: ctx.store.lastEvictedTs(name) < since && counters.completeSince(since),
    events_lost: counters.sumBetween(since, until).get("lost") ?? 0,
    events_lost_total: status.lost,
    events_evicted_total: status.evicted,
    ...program.summarize(table, filter, ctx.store),
  };
}

/** Top-k of a program's events over the last `duration` seconds, grouped by `by`. */
export function topOf(
  ctx: AppContext,
  name: string,
  query: {
    by: string[];
    pid?: number;
    command?: string;
    duration?: number;
    limit?: number;
    where?: Where;
  },
) {
  const program = ctx.programs.get(name)!;
  const table = ctx.store.get(name)!;
  ctx.manager.refresh();
  const duration = query.duration ?? DEFAULT_DURATION;
  const until = (ctx.now ?? Date.now)();
  const since = until - duration * 1000;
  const where = query.where ?? new Map();
  const match = compileWhere(program.filters, table, ctx.store, where);
  const filter = { pid: query.pid, command: query.command, since, until, match };
  const result = topGroups(table, ctx.store, {
    by: query.by,
    fields: program.groups ?? {},
    limit: query.limit ?? 10,
    forEach: (fn) => forEachRow(table, ctx.store, filter, fn),
    failed: program.failed?.(table) ?? null,
  });
  return {
    program: name,
    by: query.by,
    since: isoMicros(since),
    until: isoMicros(until),
    duration_seconds: duration,
    filter: filterEcho(query, where),
    window_complete: ctx.store.lastEvictedTs(name) < since,
    total: result.total,
    groups: result.groups.map((g) => ({
      ...g.key,
      count: g.count,
      ...(g.failed === undefined ? {} : { failed: g.failed }),
    })),
    other_groups: result.other_groups,
    other_count: result.other_count,
  };
}

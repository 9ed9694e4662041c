/**
 * What the routes answer, independent of HTTP: event listings and summaries over the store.
 *
 * @module
 */

import type { ProgramManager } from "../programs/manager.ts";
import type { Program } from "../programs/program.ts";
import { type EventFilter, isoMicros, newestRows } from "../programs/query.ts";
import type { Store } from "../store/mod.ts";
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

/** The newest events of the given programs that match, merged newest first. */
export function listEvents(
  ctx: AppContext,
  names: readonly string[],
  filter: EventFilter & { limit?: number },
) {
  ctx.manager.refresh();
  const limit = filter.limit ?? DEFAULT_LIMIT;
  const picked: { ts: number; program: Program; slot: number }[] = [];
  let truncated = false;
  for (const name of names) {
    const program = ctx.programs.get(name)!;
    const table = ctx.store.get(name);
    if (!table) continue;
    const slots = newestRows(table, ctx.store, filter, limit + 1);
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
  return { count: events.length, limit, truncated, events };
}

/** A program's summary over the last `duration` seconds, with the fields every summary has. */
export function summarize(
  ctx: AppContext,
  name: string,
  query: { pid?: number; command?: string; duration?: number; duration_seconds?: number },
) {
  const program = ctx.programs.get(name)!;
  const table = ctx.store.get(name)!;
  ctx.manager.refresh();
  const duration = query.duration ?? query.duration_seconds ?? DEFAULT_DURATION;
  const until = (ctx.now ?? Date.now)();
  const since = until - duration * 1000;
  const status = ctx.manager.status(name);
  const filter = { pid: query.pid, command: query.command, since, until };
  const counters = ctx.store.counters(name);
  const because: ("not_running" | "evicted")[] = [];
  if (!ctx.manager.ranThrough(name, since, until)) because.push("not_running");
  if (!(ctx.store.lastEvictedTs(name) < since && counters.completeSince(since))) {
    because.push("evicted");
  }
  return {
    program: name,
    since: isoMicros(since),
    until: isoMicros(until),
    duration_seconds: duration,
    pid: query.pid ?? null,
    command: query.command ?? null,
    window_complete: because.length === 0,
    window_incomplete_because: because,
    events_lost: counters.sumBetween(since, until).get("lost") ?? 0,
    events_lost_total: status.lost,
    events_evicted_total: status.evicted,
    ...program.summarize(table, filter, ctx.store),
  };
}

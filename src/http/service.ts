/**
 * What the routes answer, independent of HTTP: event listings and summaries over the store.
 *
 * @module
 */

import type { ProgramManager } from "../programs/manager.ts";
import type { HttpCounters } from "../server/listen.ts";
import type { Access } from "./access.ts";
import { compileWhere, topGroups, type Where } from "../programs/filter.ts";
import { type EventWriter, eventWriter } from "../programs/event_json.ts";
import { JsonBytes } from "../programs/json_bytes.ts";
import type { Program } from "../programs/program.ts";
import {
  type EventFilter,
  forEachRowSliced,
  isoMicros,
  newestSeqs,
  slotOfSeq,
} from "../programs/query.ts";
import type { Store } from "../store/mod.ts";
import { filterEcho } from "./filters.ts";
import { type Gate, TimeSlice } from "./heavy.ts";
import { DEFAULT_DURATION, DEFAULT_LIMIT } from "./params.ts";

const encoder = new TextEncoder();

/**
 * A 200 answer whose body is JSON made as bytes ({@linkcode listEventsJson}): the shape the
 * route documents, which the typed `c.json` cannot know it is (hence the cast). The chunks are
 * written one by one, not joined.
 */
export function jsonChunks(chunks: Uint8Array[]): never {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
  const length = chunks.reduce((n, c) => n + c.length, 0);
  return new Response(body, {
    status: 200,
    headers: { "content-type": "application/json", "content-length": String(length) },
  }) as never;
}

/**
 * `JSON.stringify(value)` as bytes, made in slices ({@linkcode TimeSlice}) so that a large answer
 * does not hold the event loop: the elements of each array value, and of each array inside an
 * object value (the compatibility lists' `events_by_pid`), are stringified one by one.
 */
export async function jsonSliced(value: Record<string, unknown>): Promise<Uint8Array[]> {
  const slice = new TimeSlice();
  const chunks: Uint8Array[] = [];
  let parts: string[] = [];
  const cut = async () => {
    if (!slice.due()) return;
    chunks.push(encoder.encode(parts.join("")));
    parts = [];
    await slice.next();
  };
  const array = async (items: unknown[]) => {
    parts.push("[");
    for (let i = 0; i < items.length; i++) {
      parts.push(i === 0 ? "" : ",", JSON.stringify(items[i]) ?? "null");
      await cut();
    }
    parts.push("]");
  };
  const entries = (o: object) => Object.entries(o).filter(([, v]) => v !== undefined);
  parts.push("{");
  for (const [i, [key, v]] of entries(value).entries()) {
    parts.push(i === 0 ? "" : ",", JSON.stringify(key), ":");
    if (Array.isArray(v)) {
      await array(v);
    } else if (v !== null && typeof v === "object" && Object.values(v).some(Array.isArray)) {
      parts.push("{");
      for (const [j, [k, inner]] of entries(v).entries()) {
        parts.push(j === 0 ? "" : ",", JSON.stringify(k), ":");
        if (Array.isArray(inner)) await array(inner);
        else parts.push(JSON.stringify(inner));
      }
      parts.push("}");
    } else {
      parts.push(JSON.stringify(v));
    }
  }
  parts.push("}");
  chunks.push(encoder.encode(parts.join("")));
  return chunks;
}

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
  /** Who may reach what (web config, credentials); default: no web config, loopback control. */
  access?: Access;
  /** Clients of /api/events/stream at once (default 16, `--web.max-streams`). */
  maxStreams?: number;
  /** The HTTP server's counters (connections, refusals), for /metrics. */
  httpCounters?: () => Readonly<HttpCounters>;
  /** The gate heavy queries pass one at a time (made by createApp). */
  heavy?: Gate;
}

/** The events a list takes, newest first, before they are made JSON. */
interface Picked {
  limit: number;
  truncated: boolean;
  filter: ReturnType<typeof filterEcho>;
  /** Each event's program and sequence number in its table (see `slotOfSeq`). */
  rows: { program: Program; seq: number }[];
}

/**
 * The newest events of the given programs that match, merged newest first, at most `limit`.
 * The scans are cut into slices that give the event loop back (see heavy.ts). A program
 * without a field of `where` has no event that matches.
 */
async function pickEvents(
  ctx: AppContext,
  names: readonly string[],
  filter: EventFilter & { limit?: number; where?: Where },
  slice: TimeSlice,
): Promise<Picked> {
  ctx.manager.refresh();
  const limit = filter.limit ?? DEFAULT_LIMIT;
  const picked: { ts: number; program: Program; seq: number }[] = [];
  let truncated = false;
  const where = filter.where ?? new Map();
  for (const name of names) {
    const program = ctx.programs.get(name)!;
    const table = ctx.store.get(name);
    if (!table) continue;
    const match = compileWhere(program.filters, table, ctx.store, where);
    const seqs = await newestSeqs(table, ctx.store, { ...filter, match }, limit + 1, slice);
    if (seqs.length > limit) truncated = true;
    for (const seq of seqs.slice(0, limit)) {
      const slot = slotOfSeq(table, seq);
      if (slot >= 0) picked.push({ ts: table.cols.ts[slot], program, seq });
    }
  }
  picked.sort((a, b) => b.ts - a.ts);
  if (picked.length > limit) truncated = true;
  return { limit, truncated, filter: filterEcho(filter, where), rows: picked.slice(0, limit) };
}

/**
 * The newest events of the given programs that match, merged newest first, as objects (the
 * compatibility lists reshape them). Long scans and the objects of many events are cut into
 * slices that give the event loop back (see heavy.ts). A program without a field of `where`
 * has no event that matches.
 */
export async function listEvents(
  ctx: AppContext,
  names: readonly string[],
  filter: EventFilter & { limit?: number; where?: Where },
) {
  const slice = new TimeSlice();
  const { limit, truncated, filter: echo, rows } = await pickEvents(ctx, names, filter, slice);
  const events: Record<string, unknown>[] = [];
  for (const { program, seq } of rows) {
    const table = ctx.store.get(program.name)!;
    const slot = slotOfSeq(table, seq);
    if (slot < 0) continue; // evicted while the list was being made: gone, and counted
    events.push(program.toJson(table, slot, ctx.store));
    if (slice.due()) await slice.next();
  }
  return { count: events.length, limit, truncated, filter: echo, events };
}

/**
 * {@linkcode listEvents} as the bytes of its JSON answer, with the list under `listKey`: each
 * event's text is written as bytes straight from its columns (`eventWriter`, no object in
 * between), the event loop given back between slices. The head (`count`, ...) comes first in
 * the answer but is made last: an event evicted while the list is made is left out, and not
 * counted.
 */
export async function listEventsJson(
  ctx: AppContext,
  names: readonly string[],
  filter: EventFilter & { limit?: number; where?: Where },
  listKey = "events",
): Promise<Uint8Array[]> {
  const slice = new TimeSlice();
  const { limit, truncated, filter: echo, rows } = await pickEvents(ctx, names, filter, slice);
  const writers = new Map<Program, EventWriter>();
  const out = new JsonBytes();
  let count = 0;
  for (const { program, seq } of rows) {
    const table = ctx.store.get(program.name)!;
    const slot = slotOfSeq(table, seq);
    if (slot < 0) continue; // evicted while the list was being made: gone, and counted
    let writer = writers.get(program);
    if (!writer) writers.set(program, writer = eventWriter(program, table, ctx.store));
    if (count++ > 0) out.byte(0x2c);
    writer.write(slot, out);
    if (slice.due()) await slice.next();
  }
  out.ascii("]}");
  const head = JSON.stringify({ count, limit, truncated, filter: echo }).slice(0, -1);
  return [encoder.encode(`${head},${JSON.stringify(listKey)}:[`), ...out.take()];
}

/**
 * A program's summary over the last `duration` seconds, with the fields every summary has; in
 * slices when the program can make it so (`summarizeSliced`). What the window's completeness
 * says is read after the summary, so that rows evicted while it was made count.
 */
export async function summarize(
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
  const body = program.summarizeSliced
    ? await program.summarizeSliced(table, filter, ctx.store, new TimeSlice())
    : program.summarize(table, filter, ctx.store);
  const because = incompleteBecause(ctx, name, since, until);
  return {
    program: name,
    since: isoMicros(since),
    until: isoMicros(until),
    duration_seconds: duration,
    pid: query.pid ?? null,
    command: query.command ?? null,
    filter: filterEcho(query, where),
    window_complete: because.length === 0,
    window_incomplete_because: because,
    events_lost: counters.sumBetween(since, until).get("lost") ?? 0,
    events_lost_total: status.lost,
    events_evicted_total: status.evicted,
    ...body,
  };
}

/**
 * Why the window `[since, until]` of a program's events is not complete (empty when it is): the
 * program did not watch all of it, or events or counter samples of it were already evicted.
 */
function windowFields(because: ("not_running" | "evicted")[]) {
  return { window_complete: because.length === 0, window_incomplete_because: because };
}

function incompleteBecause(
  ctx: AppContext,
  name: string,
  since: number,
  until: number,
): ("not_running" | "evicted")[] {
  const because: ("not_running" | "evicted")[] = [];
  if (!ctx.manager.ranThrough(name, since, until)) because.push("not_running");
  if (!(ctx.store.lastEvictedTs(name) < since && ctx.store.counters(name).completeSince(since))) {
    because.push("evicted");
  }
  return because;
}

/** Top-k of a program's events over the last `duration` seconds, grouped by `by`. */
export async function topOf(
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
  const slice = new TimeSlice();
  const result = await topGroups(table, ctx.store, {
    by: query.by,
    fields: program.groups ?? {},
    limit: query.limit ?? 10,
    forEach: (fn) => forEachRowSliced(table, ctx.store, filter, fn, slice),
    failed: () => program.failed?.(table) ?? null,
  });
  return {
    program: name,
    by: query.by,
    since: isoMicros(since),
    until: isoMicros(until),
    duration_seconds: duration,
    filter: filterEcho(query, where),
    ...windowFields(incompleteBecause(ctx, name, since, until)),
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

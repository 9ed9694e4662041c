/**
 * Query parameters shared by several routes, each defined once.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";

/** Upper bound of `limit`. */
export const MAX_LIMIT = 10_000;
export const DEFAULT_LIMIT = 100;
/** Default summary window, seconds. */
export const DEFAULT_DURATION = 60;
/** Longest summary window, seconds (a week). */
export const MAX_DURATION = 7 * 24 * 3600;

function integer(name: string, min: number, max: number) {
  return z.string()
    .regex(/^[0-9]+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`)
    .openapi({ type: "integer", minimum: min, maximum: max, param: { name, in: "query" } });
}

/** An RFC 3339 time, as Unix ms. */
export function rfc3339(description: string) {
  return z.string()
    .refine(
      (s) =>
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s) &&
        !Number.isNaN(Date.parse(s)),
      {
        message: "must be an RFC 3339 time such as 2026-11-25T10:00:00Z",
      },
    )
    .transform((s) => Date.parse(s))
    .openapi({ type: "string", format: "date-time", description });
}

function timestamp(name: string, description: string) {
  return rfc3339(description).openapi({ param: { name, in: "query" } });
}

export const pid = integer("pid", 0, 4294967295).optional().openapi({
  description: "only events of this process id",
});
export const command = z.string().min(1).max(64).optional().openapi({
  description: "only events of this command (the task's comm, at most 15 characters)",
  param: { name: "command", in: "query" },
});
/**
 * `pid` of the compatibility paths: 0 means any process there, as it did in the original project
 * (Go's zero value); `/api/programs/...` can filter pid 0 itself.
 */
export const anyPid = integer("pid", 0, 4294967295).optional().openapi({
  description: "only events of this process id; 0 means any (as in the original project)",
});
/** `command` of the compatibility paths: empty means any command, as in the original project. */
export const anyCommand = z.string().max(64).optional().openapi({
  description:
    "only events of this command (the task's comm, at most 15 characters); empty means any (as in the original project)",
  param: { name: "command", in: "query" },
});
export const since = timestamp("since", "only events at or after this time (RFC 3339)").optional();
export const until = timestamp("until", "only events at or before this time (RFC 3339)").optional();
export const limit = integer("limit", 1, MAX_LIMIT).optional().openapi({
  description:
    `how many events at most (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}); the newest come first`,
});
export const duration = integer("duration", 1, MAX_DURATION).optional().openapi({
  description: `window in seconds, ending now (default ${DEFAULT_DURATION})`,
});
export const durationSeconds = integer("duration_seconds", 1, MAX_DURATION).optional().openapi({
  description: "the same as duration (kept for compatibility)",
});

/** Rejects a window whose start is after its end. */
export function checkWindow(
  q: { since?: number; until?: number },
  ctx: z.RefinementCtx,
): void {
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) {
    ctx.addIssue({ code: "custom", path: ["since"], message: "must not be after until" });
  }
}

/** Filters of an event listing. */
export const EventsQuery = z.object({ pid, command, since, until, limit })
  .strict()
  .superRefine(checkWindow);

/** Filters of a summary. */
export const SummaryQuery = z.object({ pid, command, duration, duration_seconds: durationSeconds })
  .strict()
  .superRefine(checkDuration);

/** Rejects `duration` and `duration_seconds` that disagree. */
export function checkDuration(
  q: { duration?: number; duration_seconds?: number },
  ctx: z.RefinementCtx,
): void {
  if (
    q.duration !== undefined && q.duration_seconds !== undefined &&
    q.duration !== q.duration_seconds
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["duration_seconds"],
      message: "differs from duration; give one of them",
    });
  }
}

/**
 * `type=a,b`: names of programs, each once (`type=connection,connection` is `connection`: a
 * name given twice must not return its events twice).
 */
export function typeList(names: readonly string[]) {
  return z.string().optional().openapi({
    description: `only events of these programs, comma-separated (${
      names.join(", ")
    }); a name given twice counts once`,
    param: { name: "type", in: "query" },
  }).refine(
    (t) => t === undefined || t.split(",").every((n) => names.includes(n)),
    { message: `must be one or more of: ${names.join(", ")}` },
  ).transform((t) => t === undefined ? t : [...new Set(t.split(","))].join(","));
}

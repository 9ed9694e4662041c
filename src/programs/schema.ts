/**
 * Fields every program's events and summaries share.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";

export const EventBase = z.object({
  type: z.string().openapi({ description: "the program that recorded the event" }),
  wall_time: z.string().openapi({
    description: "when it happened (RFC 3339, microseconds, UTC)",
    example: "2026-11-25T03:04:05.123456Z",
  }),
  timestamp_ms: z.number().openapi({ description: "the same instant in Unix milliseconds" }),
  pid: z.number().int().openapi({ description: "process id", example: 1234 }),
  command: z.string().openapi({ description: "the task's command (comm)", example: "curl" }),
});

export const SummaryBase = z.object({
  program: z.string(),
  since: z.string().openapi({ description: "window start (RFC 3339)" }),
  until: z.string().openapi({ description: "window end (RFC 3339)" }),
  duration_seconds: z.number().openapi({ description: "window length" }),
  pid: z.number().int().nullable().openapi({ description: "the pid filter, if any" }),
  command: z.string().nullable().openapi({ description: "the command filter, if any" }),
  filter: z.record(z.string(), z.array(z.string())).openapi({
    description:
      "every filter applied (field filters in normal form, excluded values with their !; pid and command when given)",
    example: { unit: ["nginx.service"], result: ["!ok"] },
  }),
  window_complete: z.boolean().openapi({
    description:
      "false when the program did not watch the whole window (it started after the window began, or was stopped or failed inside it: see stopped_periods in /api/programs), or when events (or counter samples) of the window were already evicted from the store",
  }),
  window_incomplete_because: z.array(z.enum(["not_running", "evicted"])).openapi({
    description:
      "why window_complete is false (empty when it is true): not_running, the program did not watch the whole window; evicted, events or counter samples of the window were already evicted from the store",
    example: ["not_running"],
  }),
  events_lost: z.number().int().openapi({
    description:
      "events the kernel could not hand over (ring buffer full) inside the window (sampled each second)",
  }),
  events_lost_total: z.number().int().openapi({
    description: "events lost since the server started, all windows",
  }),
  events_evicted_total: z.number().int().openapi({
    description:
      "events evicted from the store to stay within its capacity, since the server started",
  }),
});

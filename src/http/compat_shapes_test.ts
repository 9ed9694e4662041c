import assert from "node:assert/strict";
import {
  COMPAT_SHAPES,
  compatListOf,
  compatSummaryOf,
  goDuration,
  queryTime,
} from "./compat_shapes.ts";

const connection = COMPAT_SHAPES.get("connection")!;
const drops = COMPAT_SHAPES.get("packet_drop")!;
const NOW = Date.UTC(2026, 10, 25, 3, 20, 46, 797);

/** The fields of a native summary the sentences read. */
function summary(fields: Record<string, unknown>) {
  return {
    duration_seconds: 60,
    pid: null,
    command: null,
    window_complete: true,
    window_incomplete_because: [],
    events_lost: 0,
    ...fields,
  };
}

Deno.test("goDuration prints whole seconds as Go prints a duration", () => {
  assert.equal(goDuration(0), "0s");
  assert.equal(goDuration(45.9), "45s");
  assert.equal(goDuration(125), "2m5s");
  assert.equal(goDuration(3603), "1h0m3s");
  assert.equal(goDuration(90061), "25h1m1s");
  assert.equal(goDuration(-1), "0s");
});

Deno.test("queryTime is RFC 3339 to the second", () => {
  assert.equal(queryTime(NOW), "2026-11-25T03:20:46Z");
});

Deno.test("a summary's message says how far to trust it", () => {
  const s = compatSummaryOf(
    connection,
    summary({
      total_attempts: 1,
      successful: 1,
      in_progress: 0,
      failed: 0,
      pid: 7,
      window_complete: false,
      window_incomplete_because: ["not_running", "evicted"],
      events_lost: 1,
    }),
    { now: NOW },
  );
  assert.equal(
    s.message,
    "1 connect() call by pid 7 in the last 60 seconds: 1 succeeded, 0 in progress, 0 failed." +
      " The program did not watch the whole window (it started later, or was stopped): counts are low." +
      " Events of the window were already evicted from the store: counts are low." +
      " 1 event of the window was lost in the kernel (ring full).",
  );
  assert.deepEqual([s.count, s.pid, s.command, s.duration], [1, 7, "", 60]);
  assert.equal(
    compatSummaryOf(connection, summary({ total_attempts: 0, events_lost: 3 }), { now: NOW })
      .message,
    "0 connect() calls in the last 60 seconds. 3 events of the window were lost in the kernel (ring full).",
  );
});

Deno.test("a drop summary's message names the commonest reason and where counts come from", () => {
  const kernel = compatSummaryOf(
    drops,
    summary({
      total_drops: 22,
      counts_source: "kernel",
      by_reason: { QUEUE_PURGE: 17, NO_SOCKET: 5 },
      duration_seconds: 1,
    }),
    { now: NOW },
  );
  assert.equal(kernel.count, 22);
  assert.equal(
    kernel.message,
    "22 packet drops in the last 1 second, most often QUEUE_PURGE (17), counted by the kernel.",
  );
  const filtered = compatSummaryOf(
    drops,
    summary({
      total_drops: 1,
      counts_source: "events",
      by_reason: { NO_SOCKET: 1 },
      command: "nc",
    }),
    { now: NOW },
  );
  assert.equal(
    filtered.message,
    "1 packet drop of nc in the last 60 seconds, most often NO_SOCKET (1), counted from the stored events.",
  );
});

Deno.test("a list groups events by pid, each pid's newest first, and keeps the flat list", async () => {
  const e = (pid: number, i: number) => ({
    type: "packet_drop",
    wall_time: `2026-11-25T03:20:4${i}.000000Z`,
    pid,
    reason: "NO_SOCKET",
    reason_code: 3,
    length: 9,
  });
  const events = [e(2, 3), e(1, 2), e(2, 1)];
  const list = await compatListOf(drops, { count: 3, limit: 3, truncated: true, events }, {
    now: NOW,
  });
  assert.deepEqual(Object.keys(list.events_by_pid as object), ["1", "2"]);
  const two = (list.events_by_pid as Record<string, { wall_time: string }[]>)["2"];
  assert.deepEqual(two.map((x) => x.wall_time), [events[0].wall_time, events[2].wall_time]);
  assert.equal(list.total_pids, 2);
  assert.equal(list.total_events, 3);
  assert.equal((list.packet_drops as unknown[]).length, 3);
  assert.equal(
    list.message,
    "3 packet drops of 2 processes, newest first. More matched than limit=3: raise limit or narrow the filters.",
  );
  const first = (list.packet_drops as Record<string, unknown>[])[0];
  assert.deepEqual(
    [
      first.drop_reason,
      first.drop_reason_code,
      first.skb_length,
      first.packet_size_bytes,
      first.time,
    ],
    ["NO_SOCKET", 3, 9, 9, events[0].wall_time],
  );
});

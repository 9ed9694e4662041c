/**
 * Honest windows end to end: a program stopped through the API and started again leaves a
 * stopped period in `/health` and `/api/programs`, and a summary window that covers it is
 * `window_complete: false`, while a window after the restart is `true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { canRunPrivileged, privileged, type ServerHandle, startServer } from "./_server.ts";

interface Status {
  name: string;
  state: string;
  started_at: string | null;
  stopped_at: string | null;
  stopped_periods: { from: string; until: string | null }[];
}

async function statusOf(server: ServerHandle, name: string, route: string): Promise<Status> {
  const body = await server.json<{ programs: Status[] }>(route);
  return body.programs.find((p) => p.name === name)!;
}

async function complete(server: ServerHandle, duration: number): Promise<boolean> {
  const summary = await server.json<
    { window_complete: boolean; window_incomplete_because: string[] }
  >(`/api/programs/connection/summary?duration=${duration}`);
  // nothing is evicted in these short runs: the only reason is a time the program did not run
  assert.deepEqual(
    summary.window_incomplete_because,
    summary.window_complete ? [] : ["not_running"],
  );
  return summary.window_complete;
}

async function control(server: ServerHandle, action: "start" | "stop"): Promise<Status> {
  return await server.json<Status>(`/api/programs/connection/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: privileged("windows: a window over a stop is incomplete, one after the restart complete"),
  ignore: !canRunPrivileged,
  async fn() {
    await using server = await startServer();
    const started = await statusOf(server, "connection", "/api/programs");
    assert.equal(started.stopped_at, null);
    assert.deepEqual(started.stopped_periods, []);
    // A window reaching back before the program started is not one it watched.
    assert.equal(await complete(server, 3600), false, "reaches back before the start");
    await sleep(1100);
    assert.equal(await complete(server, 1), true, "one second after the start");

    const stopped = await control(server, "stop");
    assert.equal(stopped.state, "stopped");
    assert.ok(stopped.stopped_at, "stopped_at is set");
    assert.deepEqual(stopped.stopped_periods, [{ from: stopped.stopped_at, until: null }]);
    const health = await server.json<{ status: string; programs: Status[] }>("/health");
    assert.equal(health.status, "degraded");
    assert.deepEqual(
      health.programs.find((p) => p.name === "connection")!.stopped_periods,
      stopped.stopped_periods,
    );
    assert.equal(await complete(server, 1), false, "while it is stopped");

    await sleep(300);
    const restarted = await control(server, "start");
    assert.equal(restarted.state, "running");
    assert.equal(restarted.stopped_at, stopped.stopped_at, "when it last stopped");
    assert.equal(restarted.stopped_periods.length, 1);
    const gap = restarted.stopped_periods[0];
    assert.equal(gap.from, stopped.stopped_at);
    assert.ok(gap.until !== null, "the period ended at the restart");
    const gapMs = Date.parse(gap.until) - Date.parse(gap.from);
    assert.ok(gapMs >= 300 && gapMs < 10_000, `the gap lasted ${gapMs} ms`);
    assert.deepEqual(
      (await statusOf(server, "connection", "/health")).stopped_periods,
      restarted.stopped_periods,
    );

    assert.equal(await complete(server, 30), false, "a window that covers the gap");
    await sleep(1100);
    assert.equal(await complete(server, 1), true, "a window after the restart");
    // The other programs ran throughout.
    const life = await server.json<{ window_complete: boolean }>(
      "/api/programs/tcp_life/summary?duration=2",
    );
    assert.equal(life.window_complete, true, "tcp_life was not stopped");
  },
});

import assert from "node:assert/strict";
import { RunLog } from "./run_log.ts";

Deno.test("RunLog: a window is complete only after the first start and outside stopped periods", () => {
  const log = new RunLog();
  assert.equal(log.ranThrough(0, 10), false, "never started");
  log.started(100);
  assert.equal(log.ranThrough(90, 200), false, "reaches back before the first start");
  assert.equal(log.ranThrough(100, 200), true);
  log.stopped(300);
  assert.equal(log.stoppedAt, 300);
  assert.deepEqual(log.periods, [{ from: 300, until: null }]);
  assert.equal(log.ranThrough(200, 299), true, "before the stop");
  assert.equal(log.ranThrough(200, 301), false, "reaches into the open period");
  assert.equal(log.ranThrough(1000, 2000), false, "still stopped");
  log.started(400);
  assert.deepEqual(log.periods, [{ from: 300, until: 400 }]);
  assert.equal(log.ranThrough(250, 450), false, "covers the gap");
  assert.equal(log.ranThrough(350, 450), false, "starts inside the gap");
  assert.equal(log.ranThrough(400, 450), true, "after the restart");
  assert.equal(log.ranThrough(100, 300), true, "ends as it stopped");
});

Deno.test("RunLog: repeated starts and stops change nothing; failing while stopped opens no period", () => {
  const log = new RunLog();
  log.stopped(5); // not running: a failed first start
  assert.equal(log.stoppedAt, null);
  assert.deepEqual(log.periods, []);
  log.started(10);
  log.started(20);
  log.stopped(30);
  log.stopped(40);
  assert.deepEqual(log.periods, [{ from: 30, until: null }]);
  assert.equal(log.stoppedAt, 30);
});

Deno.test("RunLog: forgotten periods make windows reaching past them incomplete", () => {
  const log = new RunLog(2);
  log.started(0);
  for (let t = 100; t <= 300; t += 100) {
    log.stopped(t);
    log.started(t + 10);
  }
  assert.deepEqual(log.periods, [{ from: 200, until: 210 }, { from: 300, until: 310 }]);
  assert.equal(log.ranThrough(105, 150), false, "inside the forgotten period's reach");
  assert.equal(log.ranThrough(110, 150), true, "after the forgotten period ended");
  assert.equal(log.ranThrough(310, 400), true);
});

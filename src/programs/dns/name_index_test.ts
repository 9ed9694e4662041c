import assert from "node:assert/strict";
import { NAME_WINDOW_MS, NameIndex } from "./name_index.ts";

const T = 1_800_000_000_000;

Deno.test("NameIndex: the name the same process was answered shortly before", () => {
  const index = new NameIndex();
  index.add("10.0.0.1", "a.test", 100, 50, T);
  index.add("10.0.0.1", "b.test", 200, 60, T + 10);
  assert.equal(index.nameOf("10.0.0.1", { pid: 100, cgroupId: 50, tsMs: T + 20 }), "a.test");
  assert.equal(index.nameOf("10.0.0.1", { pid: 200, cgroupId: 60, tsMs: T + 20 }), "b.test");
  assert.equal(index.nameOf("10.0.0.2", { pid: 100, cgroupId: 50, tsMs: T + 20 }), null);
});

Deno.test("NameIndex: else a process of the same cgroup, never the root's", () => {
  const index = new NameIndex();
  index.add("10.0.0.1", "svc.test", 100, 50, T);
  index.add("10.0.0.9", "root.test", 100, 1, T);
  assert.equal(index.nameOf("10.0.0.1", { pid: 101, cgroupId: 50, tsMs: T + 1 }), "svc.test");
  assert.equal(index.nameOf("10.0.0.1", { pid: 101, cgroupId: 51, tsMs: T + 1 }), null);
  assert.equal(index.nameOf("10.0.0.9", { pid: 101, cgroupId: 1, tsMs: T + 1 }), null);
  // the same pid wins over a newer answer to its cgroup
  index.add("10.0.0.1", "other.test", 102, 50, T + 2);
  assert.equal(index.nameOf("10.0.0.1", { pid: 100, cgroupId: 50, tsMs: T + 3 }), "svc.test");
  assert.equal(index.nameOf("10.0.0.1", { pid: 103, cgroupId: 50, tsMs: T + 3 }), "other.test");
});

Deno.test("NameIndex: only answers before the connection, within the window", () => {
  const index = new NameIndex();
  index.add("10.0.0.1", "a.test", 100, 50, T);
  assert.equal(index.nameOf("10.0.0.1", { pid: 100, cgroupId: 50, tsMs: T - 1 }), null);
  assert.equal(
    index.nameOf("10.0.0.1", { pid: 100, cgroupId: 50, tsMs: T + NAME_WINDOW_MS }),
    "a.test",
  );
  assert.equal(
    index.nameOf("10.0.0.1", { pid: 100, cgroupId: 50, tsMs: T + NAME_WINDOW_MS + 1 }),
    null,
  );
  // answered again later: the newer answer counts
  index.add("10.0.0.1", "a.test", 100, 50, T + NAME_WINDOW_MS);
  assert.equal(index.size, 1, "the same asker and name is one entry");
  assert.equal(
    index.nameOf("10.0.0.1", { pid: 100, cgroupId: 50, tsMs: T + NAME_WINDOW_MS + 1 }),
    "a.test",
  );
});

Deno.test("NameIndex: bounded; the address first answered longest ago goes first", () => {
  const index = new NameIndex(20);
  for (let i = 0; i < 30; i++) index.add(`10.0.0.${i}`, `n${i}.test`, 1, 50, T + i);
  assert.equal(index.size, 20);
  assert.equal(index.nameOf("10.0.0.9", { pid: 1, cgroupId: 50, tsMs: T + 100 }), null);
  assert.equal(index.nameOf("10.0.0.10", { pid: 1, cgroupId: 50, tsMs: T + 100 }), "n10.test");
  // the next ones over the bound evict the oldest addresses, entries and all
  // a second asker of the oldest address: the next oldest goes, not the one just answered
  index.add("10.0.0.10", "n10.test", 2, 50, T + 40);
  assert.equal(index.size, 20);
  assert.equal(index.nameOf("10.0.0.10", { pid: 2, cgroupId: 50, tsMs: T + 100 }), "n10.test");
  assert.equal(index.nameOf("10.0.0.11", { pid: 1, cgroupId: 50, tsMs: T + 100 }), null);
  index.add("10.0.0.99", "n99.test", 2, 50, T + 41);
  assert.equal(index.nameOf("10.0.0.99", { pid: 2, cgroupId: 50, tsMs: T + 100 }), "n99.test");
  assert.equal(index.nameOf("10.0.0.10", { pid: 1, cgroupId: 50, tsMs: T + 100 }), null);
  // many askers of one address: its newest 8
  for (let pid = 100; pid < 120; pid++) index.add("10.9.9.9", "hot.test", pid, 60, T + pid);
  assert.equal(index.nameOf("10.9.9.9", { pid: 119, cgroupId: 0, tsMs: T + 200 }), "hot.test");
  assert.equal(index.nameOf("10.9.9.9", { pid: 100, cgroupId: 0, tsMs: T + 200 }), null);
  assert.ok(index.size <= 20);
});

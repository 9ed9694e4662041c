import assert from "node:assert/strict";
import { cgroup2Mounts, cgroup2Root } from "./cgroup.ts";

const HYBRID = [
  "25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
  "31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
  "32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw",
  "33 31 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory",
].join("\n");

const UNIFIED = [
  "24 29 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw",
  "30 24 0:26 /system.slice /mnt/slice rw shared:9 - cgroup2 cgroup2 rw",
  "31 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate",
].join("\n");

Deno.test("cgroup2Root: the hybrid layout's unified mount", () => {
  assert.equal(cgroup2Root(HYBRID), "/sys/fs/cgroup/unified");
});

Deno.test("cgroup2Root: the mount of the hierarchy's root, not a bind of a subtree", () => {
  assert.deepEqual(cgroup2Mounts(UNIFIED).map((m) => m.root), ["/system.slice", "/"]);
  assert.equal(cgroup2Root(UNIFIED), "/sys/fs/cgroup");
});

Deno.test("cgroup2Root: null without a cgroup2 mount; escapes undone", () => {
  assert.equal(cgroup2Root("24 29 0:22 / /sys rw - sysfs sysfs rw"), null);
  assert.equal(
    cgroup2Root("40 24 0:30 / /mnt/my\\040cgroup rw - cgroup2 none rw"),
    "/mnt/my cgroup",
  );
});

Deno.test("cgroup2Root: this machine has one (a v2 directory holds cgroup.procs)", () => {
  const root = cgroup2Root();
  assert.ok(root, "no cgroup2 mount in /proc/self/mountinfo");
  assert.ok(Deno.statSync(`${root}/cgroup.procs`).isFile);
});

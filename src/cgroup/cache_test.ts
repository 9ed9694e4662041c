import assert from "node:assert/strict";
import { Store } from "../store/mod.ts";
import { attributionCounts, attributionOf } from "./attribution.ts";
import { CgroupCache } from "./cache.ts";

/** A directory tree standing in for a cgroup v2 mount (its inode numbers are the ids). */
function tree(paths: string[]): string {
  const root = Deno.makeTempDirSync({ prefix: "cgroup-cache-test-" });
  for (const p of paths) Deno.mkdirSync(root + p, { recursive: true });
  return root;
}

const ino = (path: string) => Deno.statSync(path).ino!;

Deno.test("a scan finds every directory by its inode number", () => {
  const root = tree(["/system.slice/nginx.service", "/user.slice"]);
  try {
    const cache = new CgroupCache({ root });
    assert.equal(cache.scan(), 4);
    assert.equal(cache.path(ino(root)), "/");
    assert.equal(
      cache.path(ino(`${root}/system.slice/nginx.service`)),
      "/system.slice/nginx.service",
    );
    assert.equal(cache.path(ino(`${root}/user.slice`)), "/user.slice");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("an unknown id is scanned for, at most once per interval", () => {
  let now = 1_000_000;
  const root = tree(["/a"]);
  try {
    const cache = new CgroupCache({ root, now: () => now, rescanIntervalMs: 250 });
    cache.scan();
    Deno.mkdirSync(`${root}/b`);
    const b = ino(`${root}/b`);
    now += 100;
    assert.equal(cache.path(b), null, "within the interval: no scan");
    assert.equal(cache.scans, 1);
    now += 300;
    assert.equal(cache.path(b), "/b", "after it: scanned and found");
    assert.equal(cache.scans, 2);
    assert.equal(cache.path(123456789), null);
    now += 1000;
    assert.equal(cache.path(123456789), null, "a missed id waits before another scan");
    assert.equal(cache.scans, 3);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("removed cgroups stay known for the retention, then go", () => {
  let now = 5_000_000;
  const cache = new CgroupCache({ root: null, now: () => now, retentionMs: 60_000 });
  cache.created(42, "/system.slice/gone.service");
  cache.removed(42, now);
  assert.equal(cache.path(42), "/system.slice/gone.service");
  assert.ok(cache.isRemoved(42));
  now += 59_000;
  cache.removed(43, now, "/other"); // pruning happens as removals come in
  assert.equal(cache.path(42), "/system.slice/gone.service");
  now += 2_000;
  cache.removed(44, now, "/third");
  assert.equal(cache.path(42), null);
  assert.equal(cache.path(43), "/other");
  // created again (an id is never reused on 64-bit, but a test may): stays
  cache.created(43, "/other");
  now += 120_000;
  cache.removed(45, now, "/x");
  assert.equal(cache.path(43), "/other");
  assert.equal(cache.isRemoved(43), false);
});

Deno.test("at most maxRemoved removed cgroups are kept", () => {
  const cache = new CgroupCache({ root: null, maxRemoved: 3 });
  for (let id = 1; id <= 5; id++) cache.removed(id, Date.now(), `/c${id}`);
  assert.equal(cache.removedKnown, 3);
  assert.equal(cache.path(1), null);
  assert.equal(cache.path(5), "/c5");
});

Deno.test("a scan takes cgroups it no longer finds as removed, and keeps them", () => {
  const root = tree(["/system.slice/x.service"]);
  try {
    const cache = new CgroupCache({ root });
    cache.scan();
    const id = ino(`${root}/system.slice/x.service`);
    Deno.removeSync(`${root}/system.slice/x.service`);
    cache.scan();
    assert.ok(cache.isRemoved(id));
    assert.equal(cache.path(id), "/system.slice/x.service");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("attributions: one id per cgroup, fields from its path, 0 when not known", () => {
  const ID = "ab".repeat(32);
  const cache = new CgroupCache({ root: null });
  cache.created(7, "/system.slice/nginx.service");
  cache.created(8, `/system.slice/docker-${ID}.scope`);
  const store = new Store(10);
  const a = attributionOf(store, cache);
  const nginx = a.idOf(7);
  assert.equal(a.idOf(7), nginx);
  const docker = a.idOf(8);
  assert.notEqual(nginx, docker);
  assert.equal(a.idOf(9), 0);
  assert.equal(a.idOf(0), 0);
  assert.deepEqual(a.json(nginx), {
    cgroup_path: "/system.slice/nginx.service",
    unit: "nginx.service",
    container_id: null,
    container_runtime: null,
  });
  assert.deepEqual(a.json(docker), {
    cgroup_path: `/system.slice/docker-${ID}.scope`,
    unit: `docker-${ID}.scope`,
    container_id: ID,
    container_runtime: "docker",
  });
  assert.deepEqual(a.json(0).cgroup_path, null);
  // removed: an event stored now still resolves
  cache.removed(7, Date.now());
  const later = new Store(10);
  assert.equal(
    attributionOf(later, cache).json(attributionOf(later, cache).idOf(7)).unit,
    "nginx.service",
  );
  assert.deepEqual(attributionCounts(store, new Map([[nginx, 2], [docker, 3], [0, 1]])), {
    by_unit: { [`docker-${ID}.scope`]: 3, "nginx.service": 2, none: 1 },
    by_container: { none: 3, [ID]: 3 },
  });
});

Deno.test("attributions: fill sets every row and counts each id's rows once per call", () => {
  const cache = new CgroupCache({ root: null });
  for (let id = 1; id <= 300; id++) cache.created(id, `/system.slice/s${id}.service`);
  const a = attributionOf(new Store(10), cache);
  const cgroups = new Float64Array(2000);
  for (let i = 0; i < cgroups.length; i++) cgroups[i] = i < 500 ? 7 : 1 + (i * 7919) % 300;
  const attr = new Uint32Array(cgroups.length);
  const tally = new Map<number, number>([[a.idOf(7), 5]]);
  a.fill(cgroups, attr, { from: 100, to: 2000, tally });
  const want = new Map<number, number>([[a.idOf(7), 5]]);
  for (let i = 100; i < 2000; i++) {
    assert.equal(attr[i], a.idOf(cgroups[i]), `row ${i}`);
    want.set(attr[i], (want.get(attr[i]) ?? 0) + 1);
  }
  assert.equal(attr[99], 0, "rows outside the range are left alone");
  assert.deepEqual(
    new Map([...tally].sort((x, y) => x[0] - y[0])),
    new Map([...want].sort((x, y) => x[0] - y[0])),
  );
});

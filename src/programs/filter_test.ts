import assert from "node:assert/strict";
import { attributionOf, CgroupCache } from "../cgroup/mod.ts";
import { cidrHolds, parseCidr, parseIPv4, parseIPv6 } from "../net/cidr.ts";
import { type EventTable, Store } from "../store/mod.ts";
import { connection } from "./connection/mod.ts";
import { compileWhere, echoOf, MAX_VALUES, parseParam, topGroups, type Where } from "./filter.ts";
import { forEachRow, forEachRowSliced } from "./query.ts";

const ID = "c0ffee".repeat(10) + "c0ff";

/** A connection table of `n` pseudo-random rows over a few cgroups, addresses, ports, results. */
function setup(n: number) {
  const store = new Store(n);
  const cache = new CgroupCache({ root: null });
  cache.created(21, "/system.slice/nginx.service");
  cache.created(22, `/system.slice/docker-${ID}.scope`);
  cache.created(23, "/user.slice/user-1000.slice/session-4.scope");
  const attrs = attributionOf(store, cache);
  const table = store.table("connection", connection.columns) as unknown as EventTable;
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
  const v4 = ["10.1.2.3", "10.200.0.1", "127.0.0.1", "192.168.4.7", "8.8.8.8"];
  const v6 = ["::1", "fd00::5", "2001:db8::1", "::ffff:10.9.9.9"];
  for (let i = 0; i < n; i++) {
    const s = store.append(table);
    const c = table.cols as unknown as Record<string, { [i: number]: number }>;
    c.ts[s] = 1000 + i;
    c.pid[s] = 100 + (i % 7);
    c.comm[s] = store.strings.intern(pick(["curl", "nginx", "psql"]));
    c.uid[s] = pick([0, 1000, 33]);
    c.cgroup[s] = pick([0, 21, 22, 23, 99]);
    c.attr[s] = attrs.idOf(c.cgroup[s]);
    c.ret[s] = pick([0, 0, -111, -115, -113, -2]);
    const kind = pick(["v4", "v4", "v6", "unix"]);
    c.sock_type[s] = pick([1, 1, 2]);
    c.protocol[s] = c.sock_type[s] === 1 ? 6 : 17;
    c.port[s] = pick([5432, 443, 53, 8080]);
    const addr = table.bytes16("addr" as never, s);
    if (kind === "v4") {
      c.family[s] = 2;
      addr.set(parseIPv4(pick(v4))!);
    } else if (kind === "v6") {
      c.family[s] = 10;
      addr.set(parseIPv6(pick(v6))!);
    } else {
      c.family[s] = 1;
      c.unix_path[s] = store.strings.intern("/run/x.sock");
    }
  }
  return { store, table };
}

function inCidr(ip: unknown, cidr: string): boolean {
  if (typeof ip !== "string") return false;
  const v4 = parseIPv4(ip);
  const bytes = v4 ?? parseIPv6(ip);
  return bytes !== null && cidrHolds(parseCidr(cidr)!, v4 ? 4 : 6, bytes, 0);
}

function whereOf(params: Record<string, string>): Where {
  const fields = connection.filters!;
  return new Map(Object.entries(params).map(([k, v]) => [k, parseParam(fields[k], v)]));
}

type Json = Record<string, unknown>;

Deno.test("parseParam: comma lists, ! and normal forms; empty values and too many are errors", () => {
  const f = connection.filters!;
  const p = parseParam(f.destination, "10.1.2.3/8, !127.0.0.1");
  assert.deepEqual(p.echo, ["10.0.0.0/8", "!127.0.0.1"]);
  assert.equal(p.values.length, 1);
  assert.equal(p.not.length, 1);
  assert.deepEqual(parseParam(f.result, "!ok,!einprogress").echo, ["!ok", "!EINPROGRESS"]);
  assert.deepEqual(parseParam(f.port, "443,8000-8080").echo, ["443", "8000-8080"]);
  assert.throws(() => parseParam(f.unit, "a.service,,b.service"), /empty value/);
  assert.throws(() => parseParam(f.unit, "!"), /empty value/);
  assert.throws(() => parseParam(f.port, "80-70"), /no port/);
  assert.throws(() => parseParam(f.result, "EBOGUS"), /errno/);
  assert.throws(() => parseParam(f.family, "AF_X"), /not one of/);
  assert.throws(
    () => parseParam(f.uid, Array.from({ length: MAX_VALUES + 1 }, (_, i) => i).join(",")),
    /at most/,
  );
  assert.deepEqual(echoOf(whereOf({ unit: "none", container: "C0FFEE" })), {
    unit: ["none"],
    container: ["c0ffee"],
  });
});

Deno.test("every connection filter selects exactly what a predicate over the JSON selects", () => {
  const { store, table } = setup(3000);
  const rows: { slot: number; e: Json }[] = [];
  forEachRow(
    table,
    store,
    {},
    (slot) => rows.push({ slot, e: connection.toJson(table, slot, store) }),
  );
  const cases: [Record<string, string>, (e: Json) => boolean][] = [
    [{ unit: "nginx.service" }, (e) => e.unit === "nginx.service"],
    [{ unit: "none" }, (e) => e.unit === null],
    [{ unit: "!nginx.service,!none" }, (e) => e.unit !== null && e.unit !== "nginx.service"],
    [{ container: ID.slice(0, 12) }, (e) => e.container_id === ID],
    [{ container: "!none" }, (e) => e.container_id !== null],
    [{ container_runtime: "docker,none" }, () => true],
    [{ cgroup: "/system.slice" }, (e) => String(e.cgroup_path).startsWith("/system.slice/")],
    [{ cgroup: "/user.slice/user-1000.slice" }, (e) => e.unit === "session-4.scope"],
    [{ destination: "10.0.0.0/8" }, (e) => inCidr(e.destination_ip, "10.0.0.0/8")],
    [{ destination: "!10.0.0.0/8" }, (e) => !inCidr(e.destination_ip, "10.0.0.0/8")],
    [
      { destination: "192.168.4.0/22,::1" },
      (e) => ["192.168.4.7", "::1"].includes(e.destination_ip as string),
    ],
    [{ destination: "fd00::/8" }, (e) => e.destination_ip === "fd00::5"],
    [{ destination: "10.9.0.0/16" }, (e) => e.destination_ip === "::ffff:10.9.9.9"],
    [{ port: "5432" }, (e) => e.destination_port === 5432],
    [{ port: "50-500,!443" }, (e) => e.destination_port === 53],
    [{ port: "!5432" }, (e) => e.destination_port !== 5432],
    [{ protocol: "UDP" }, (e) => e.protocol === "UDP"],
    [{ protocol: "unix,tcp" }, (e) => e.protocol === "UNIX" || e.protocol === "TCP"],
    [{ family: "ipv6" }, (e) => e.address_family === "AF_INET6"],
    [{ family: "!AF_UNIX" }, (e) => e.address_family !== "AF_UNIX"],
    [
      { result: "ECONNREFUSED,EHOSTUNREACH" },
      (e) => ["ECONNREFUSED", "EHOSTUNREACH"].includes(e.result as string),
    ],
    [{ result: "!ok,!EINPROGRESS" }, (e) => e.result !== "ok" && e.result !== "EINPROGRESS"],
    [{ result: "E2" }, (e) => e.result === "ENOENT"],
    [{ uid: "1000,33" }, (e) => e.uid !== 0],
    [
      { unit: "nginx.service", result: "ECONNREFUSED", destination: "10.0.0.0/8", port: "5432" },
      (e) =>
        e.unit === "nginx.service" && e.result === "ECONNREFUSED" &&
        inCidr(e.destination_ip, "10.0.0.0/8") && e.destination_port === 5432,
    ],
  ];
  for (const [params, pred] of cases) {
    const match = compileWhere(connection.filters, table, store, whereOf(params))!;
    const got = rows.filter((r) => match(r.slot)).map((r) => r.slot);
    const want = rows.filter((r) => pred(r.e)).map((r) => r.slot);
    assert.ok(want.length > 0, `${JSON.stringify(params)} selects some rows`);
    assert.deepEqual(got, want, JSON.stringify(params));
    // the summary's scan applies the same test
    const summary = connection.summarize(table, { since: 0, until: Infinity, match }, store);
    assert.equal(summary.total_attempts, want.length, JSON.stringify(params));
  }
  assert.equal(compileWhere(connection.filters, table, store, new Map()), null);
  const foreign = new Map([["outcome", { values: [[0]], not: [], echo: ["closed"] }]]);
  assert.equal(
    compileWhere(connection.filters, table, store, foreign)!(0),
    false,
    "a field it lacks: none",
  );
});

Deno.test("topGroups: exact counts and failures, ties in order of first appearance, the rest", async () => {
  const { store, table } = setup(2000);
  const match = compileWhere(connection.filters, table, store, whereOf({ family: "ipv4" }));
  const filter = { since: 0, until: Infinity, match };
  const want = new Map<string, { count: number; failed: number }>();
  forEachRow(table, store, filter, (s) => {
    const e = connection.toJson(table, s, store);
    const key = JSON.stringify({ destination: e.destination, unit: e.unit });
    const g = want.get(key) ?? { count: 0, failed: 0 };
    g.count++;
    if (e.result !== "ok" && e.result !== "EINPROGRESS") g.failed++;
    want.set(key, g);
  });
  // in slices of no time at all: every row is its own slice, the answer the same
  const slicer = { due: () => true, next: () => Promise.resolve() };
  const top = await topGroups(table, store, {
    by: ["destination", "unit"],
    fields: connection.groups!,
    limit: 5,
    forEach: (fn) => forEachRowSliced(table, store, filter, fn, slicer),
    failed: () => connection.failed!(table as never),
  });
  const all = [...want].sort((a, b) => b[1].count - a[1].count);
  assert.equal(top.total, [...want.values()].reduce((n, g) => n + g.count, 0));
  assert.deepEqual(
    top.groups.map((g) => [JSON.stringify(g.key), { count: g.count, failed: g.failed }]),
    all.slice(0, 5),
  );
  assert.equal(top.other_groups, all.length - 5);
  assert.equal(top.other_count, all.slice(5).reduce((n, [, g]) => n + g.count, 0));
  // two cgroups of one unit are one group: by unit, the attribution ids merge by value
  const units = await topGroups(table, store, {
    by: ["unit"],
    fields: connection.groups!,
    limit: 10,
    forEach: (fn) => Promise.resolve(forEachRow(table, store, {}, fn)),
  });
  assert.deepEqual(
    new Set(units.groups.map((g) => g.key.unit)),
    new Set([
      null,
      "nginx.service",
      `docker-${ID}.scope`,
      "session-4.scope",
    ]),
  );
  assert.equal(units.groups.reduce((n, g) => n + g.count, 0), 2000);
});

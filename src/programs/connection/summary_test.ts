import assert from "node:assert/strict";
import { attributionCounts, attributionOf, CgroupCache } from "../../cgroup/mod.ts";
import { protocolName, resultName } from "../../net/names.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import { BlockCache } from "../blocks.ts";
import { quantile, type SummaryQuery, timeRange } from "../query.ts";
import { columns, connection } from "./mod.ts";
import { destinationOf, type Part, summarizeSliced, summarizeWith } from "./summary.ts";

type Table = EventTable<typeof columns>;

const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16;
const COMMANDS = ["curl", "nginx", "python3", "dig", "123"];
const RESULTS = [0, 0, 0, -111, -111, -115, -113, -2, 7, -5000];
const FAMILIES = [AF_INET, AF_INET, AF_INET, AF_INET6, AF_UNIX, AF_NETLINK, 0];
const TYPES = [1, 1, 1, 2, 0, 3];
const PROTOCOLS = [6, 6, 17, 0, 1, 132];

/** A deterministic generator of numbers in [0, 1). */
function lcg(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** How random rows look. */
interface Mix {
  /** Distinct destinations (addresses, ports, paths) to draw from. */
  destinations: number;
  /** Distinct latencies (a few: many ties). */
  latencies: number;
}

/** A store whose connection table holds `maxRows` rows at most, and a writer of random rows. */
function setup(maxRows: number, seed: number, mix: Mix = { destinations: 40, latencies: 1e6 }) {
  const store = new Store(maxRows);
  const table = store.table("connection", columns) as Table;
  const cgroups = new CgroupCache({ root: null });
  cgroups.created(11, "/system.slice/nginx.service");
  cgroups.created(12, `/system.slice/docker-${"ab".repeat(32)}.scope`);
  cgroups.created(13, "/user.slice/user-0.slice/session-1.scope");
  const attrs = attributionOf(store, cgroups);
  const random = lcg(seed);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  let ts = 1000, dest = 0, burst = 0;
  const append = (rows: number) => {
    for (let n = 0; n < rows; n++) {
      const s = store.append(table as unknown as EventTable);
      const c = table.cols;
      ts += random() < 0.3 ? 0 : 1 + Math.floor(random() * 3); // equal timestamps too
      c.ts[s] = ts;
      c.pid[s] = 100 + Math.floor(random() * 4);
      c.comm[s] = store.strings.intern(pick(COMMANDS));
      c.ret[s] = pick(RESULTS);
      c.latency[s] = Math.floor(random() * mix.latencies) * 1000;
      if (burst-- <= 0) dest = Math.floor(random() * mix.destinations), burst = random() * 5;
      c.family[s] = FAMILIES[dest % FAMILIES.length];
      c.sock_type[s] = TYPES[dest % TYPES.length];
      c.protocol[s] = PROTOCOLS[dest % PROTOCOLS.length];
      c.port[s] = 1000 + (dest % 97);
      const addr = table.bytes16("addr", s);
      for (let i = 0; i < 16; i++) addr[i] = ((dest >>> (8 * (i % 4))) + 7 * i) & 0xff;
      addr[4] = Math.floor(random() * 256); // past an IPv4 address: ignored
      c.unix_path[s] = c.family[s] === AF_UNIX ? store.strings.intern(`/run/s${dest % 13}`) : 0;
      c.cgroup[s] = 10 + (dest % 5); // 10 and 14: not known
      c.attr[s] = attrs.idOf(c.cgroup[s]);
    }
  };
  return { store, table, append, random, lastTs: () => ts };
}

/** The summary by the book: every row of the window, counted by name, latencies sorted. */
function reference(table: Table, query: SummaryQuery, store: Store) {
  const [lo, hi] = timeRange(table as unknown as EventTable, query);
  const comm = query.command === undefined ? -1 : store.strings.find(query.command);
  const none = query.command !== undefined && comm < 0;
  type Count = { n: number; failed: number; first: number };
  const results = new Map<string, Count>(), protocols = new Map<string, Count>();
  const commands = new Map<string, Count>(), destinations = new Map<string, Count>();
  const count = (map: Map<string, Count>, key: string, row: number, failed = false) => {
    const e = map.get(key) ?? { n: 0, failed: 0, first: row };
    e.n++;
    if (failed) e.failed++;
    map.set(key, e);
  };
  const latencies: number[] = [];
  const byAttr = new Map<number, number>();
  let ok = 0, inProgress = 0;
  const c = table.cols;
  for (let i = lo; i < hi && !none; i++) {
    const s = table.slot(i);
    if (query.pid !== undefined && c.pid[s] !== query.pid) continue;
    if (comm >= 0 && c.comm[s] !== comm) continue;
    const ret = c.ret[s];
    if (ret === 0) ok++;
    if (ret === -115) inProgress++;
    count(results, resultName(ret), i);
    const type = c.sock_type[s];
    count(
      protocols,
      type ? protocolName(c.family[s], c.protocol[s], type) ?? "unknown" : "unknown",
      i,
    );
    count(commands, store.strings.get(c.comm[s]), i);
    count(destinations, destinationOf(table, s, store).destination, i, ret !== 0 && ret !== -115);
    latencies.push(c.latency[s]);
    byAttr.set(c.attr[s], (byAttr.get(c.attr[s]) ?? 0) + 1);
  }
  const ranked = (map: Map<string, Count>) =>
    [...map].sort((a, b) => b[1].n - a[1].n || a[1].first - b[1].first);
  const counts = (map: Map<string, Count>) =>
    Object.fromEntries(ranked(map).map(([k, v]) => [k, v.n]));
  const sorted = Float64Array.from(latencies).sort();
  const n = latencies.length;
  return {
    total_attempts: n,
    successful: ok,
    in_progress: inProgress,
    failed: n - ok - inProgress,
    by_result: counts(results),
    by_protocol: counts(protocols),
    by_command: counts(commands),
    ...attributionCounts(store, byAttr),
    top_destinations: ranked(destinations).slice(0, 20).map(([destination, v]) => ({
      destination,
      count: v.n,
      failed: v.failed,
    })),
    latency_ns: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: n ? sorted[n - 1] : null,
    },
  };
}

/** Same JSON, key order included. */
function assertSame(actual: unknown, expected: unknown, message: string) {
  assert.deepEqual(actual, expected, message);
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), message);
}

/** Random windows over the table's rows: some past either end, some on equal timestamps. */
function windows(table: Table, random: () => number, count: number): SummaryQuery[] {
  const first = table.cols.ts[table.slot(0)], last = table.cols.ts[table.slot(table.length - 1)];
  const tsAt = () => table.cols.ts[table.slot(Math.floor(random() * table.length))];
  const out: SummaryQuery[] = [{ since: first - 10, until: last + 10 }, {
    since: last + 1,
    until: last + 5,
  }];
  while (out.length < count) {
    const a = random() < 0.8 ? tsAt() : first - 5 + random() * (last - first + 10);
    const b = random() < 0.8 ? tsAt() : first - 5 + random() * (last - first + 10);
    out.push({ since: Math.min(a, b), until: Math.max(a, b) });
  }
  return out;
}

Deno.test("connection summary from cached blocks equals the full scan and the reference", () => {
  for (const [seed, blockSize] of [[1, 16], [2, 64], [3, 256], [4, 1024]]) {
    const { store, table, append, random } = setup(2048, seed);
    const cache = new BlockCache<Part>(blockSize);
    for (const rows of [blockSize - 1, 700, 1500, 3000]) { // fills, then wraps the ring
      append(rows);
      for (const window of windows(table, random, 25)) {
        const at = `seed ${seed} B=${blockSize} ${table.appended} rows ${JSON.stringify(window)}`;
        const expected = reference(table, window, store);
        assertSame(summarizeWith(table, window, { store, cache }), expected, at);
        assertSame(summarizeWith(table, window, { store, cache: null }), expected, `${at} scan`);
        assertSame(connection.summarize(table, window, store), expected, `${at} default`);
        for (const filter of [{ pid: 101 }, { command: "curl" }, { pid: 102, command: "123" }]) {
          assertSame(
            summarizeWith(table, { ...window, ...filter }, { store, cache }),
            reference(table, { ...window, ...filter }, store),
            `${at} ${JSON.stringify(filter)}`,
          );
        }
        assertSame(
          summarizeWith(table, { ...window, command: "nosuch" }, { store, cache }),
          reference(table, { ...window, command: "nosuch" }, store),
          `${at} unknown command`,
        );
      }
    }
    assert.ok(cache.computed > 0, `seed ${seed}: blocks were used`);
  }
});

Deno.test("connection summary: ties and many destinations across blocks", () => {
  for (const mix of [{ destinations: 5000, latencies: 3 }, { destinations: 300, latencies: 50 }]) {
    const { store, table, append, random } = setup(4096, 9, mix);
    append(5000);
    const cache = new BlockCache<Part>(32);
    for (const window of windows(table, random, 40)) {
      const at = `${JSON.stringify(mix)} ${JSON.stringify(window)}`;
      const expected = reference(table, window, store);
      assertSame(summarizeWith(table, window, { store, cache }), expected, at);
    }
  }
});

Deno.test("connection summary with the default 16384-row blocks over a wrapped ring", () => {
  const { store, table, append, random } = setup(32768, 5);
  append(70_000);
  for (const window of windows(table, random, 6)) {
    assertSame(
      connection.summarize(table, window, store),
      reference(table, window, store),
      JSON.stringify(window),
    );
  }
});

Deno.test("connection summary: blocks are computed once, dropped when evicted", () => {
  const { store, table, append, lastTs } = setup(1024, 7);
  const cache = new BlockCache<Part>(64);
  const all = () => ({ since: 0, until: lastTs() });
  const check = () => {
    const got = summarizeWith(table, all(), { store, cache });
    assertSame(got, reference(table, all(), store), `${table.appended} rows`);
    return got;
  };
  append(1000); // 15 whole blocks and 40 rows
  check();
  assert.equal(cache.computed, 15);
  assert.equal(cache.size, 15);
  check();
  check();
  assert.equal(cache.computed, 15, "reused");
  append(152); // 1152 appended, the first 128 evicted: blocks 0 and 1 dropped, 15..17 new
  check();
  assert.equal(cache.size, 16);
  assert.equal(cache.computed, 18);
  append(1); // row 128 evicted: block 2 is no longer whole
  check();
  assert.equal(cache.size, 15);
  assert.equal(cache.computed, 18);
  // a window inside one block, or over less than a block: no block is computed
  const ts = (i: number) => table.cols.ts[table.slot(i)];
  summarizeWith(table, { since: ts(100), until: ts(110) }, { store, cache });
  assert.equal(cache.computed, 18);
  // a filter scans rows and leaves the cache alone
  summarizeWith(table, { ...all(), pid: 101 }, { store, cache });
  assert.equal(cache.computed, 18);
});

Deno.test("connection summary: a cache given another table starts again", () => {
  const a = setup(1024, 11), b = setup(1024, 12);
  a.append(1000);
  b.append(1000);
  const cache = new BlockCache<Part>(128);
  const window = { since: 0, until: 1e12 };
  for (const { table, store } of [a, b, a]) {
    assertSame(summarizeWith(table, window, { store, cache }), reference(table, window, store), "");
  }
  assert.equal(cache.computed, 3 * 7);
});

Deno.test("connection summary: destinations keep their names as old ones are renumbered", () => {
  // every row a new destination: the names of evicted blocks pile up until they are dropped
  const { store, table, append, random, lastTs } = setup(1024, 13, {
    destinations: 1e9,
    latencies: 100,
  });
  const cache = new BlockCache<Part>(64);
  for (let round = 0; round < 80; round++) {
    append(1000);
    for (const window of [{ since: 0, until: lastTs() }, ...windows(table, random, 2)]) {
      const at = `round ${round} ${JSON.stringify(window)}`;
      assertSame(
        summarizeWith(table, window, { store, cache }),
        reference(table, window, store),
        at,
      );
    }
  }
});

Deno.test("summarizeSliced answers what summarize answers, also with rows appended and evicted between slices", async () => {
  const { store, table, append } = setup(200_000, 13);
  append(150_000);
  const all = { since: 0, until: Infinity };
  const queries: SummaryQuery[] = [
    all,
    { ...all, pid: 101 },
    { ...all, command: "curl" },
    { ...all, pid: 102, command: "dig" },
    { ...all, command: "nosuch" },
  ];
  let yields = 0;
  const always = { due: () => true, next: () => (yields++, Promise.resolve()) };
  for (const query of queries) {
    const expected = connection.summarize(table as unknown as EventTable, query, store);
    const sliced = await summarizeSliced(table, query, store, always);
    assert.deepEqual(sliced, expected, JSON.stringify(query));
  }
  assert.ok(yields > 5, `the scans yielded (${yields})`);
  // rows appended meanwhile are not in the window (it was taken before); rows evicted meanwhile
  // are left out, and the rest is exact
  append(50_000); // the store is full: every append evicts as many of the oldest
  const before = connection.summarize(table as unknown as EventTable, { ...all, pid: 101 }, store);
  const churn = { due: () => true, next: () => (append(100_000), Promise.resolve()) };
  const during = await summarizeSliced(table, { ...all, pid: 101 }, store, churn);
  assert.ok(
    (during.total_attempts as number) < (before.total_attempts as number),
    "evicted rows are left out",
  );
  assert.ok((during.total_attempts as number) > 0);
});

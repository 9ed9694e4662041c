/**
 * Heavy queries cannot starve `/health` (issue 13: 8 clients of heavy queries held it at 3 s
 * median): with a million events stored, four clients run the heaviest queries back to back
 * (10,000-event lists, full scans that match nothing, week-long filtered summaries) while
 * `/health` is asked every 10 ms; its p99 must stay under 100 ms.
 *
 * The server is tests/_heavy_server.ts (the real app and listener over a synthetic store, no
 * BPF): it needs no root. The heavy clients are Python children on loopback, ended by pid.
 *
 * @module
 */

import assert from "node:assert/strict";
import { asUser, ROOT_DIR } from "./_server.ts";

const HEAVY = [
  "/api/events?limit=10000",
  "/api/programs/connection/events?limit=10000&command=curl",
  "/api/programs/connection/events?limit=10000&pid=99999",
  "/api/list-connections?limit=10000&since=2000-01-01T00:00:00Z",
  "/api/programs/connection/summary?duration=604800&pid=1007",
  "/api/connection-summary?duration=604800&command=curl",
  "/api/programs/connection/summary?duration=604800",
];

// One heavy client: keep-alive, every heavy query in turn, forever; prints its count on stdout
// after each.
const CLIENT = `
import http.client, json, sys
port, paths = int(sys.argv[1]), json.loads(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
n = 0
while True:
    for p in paths:
        conn.request("GET", p)
        r = conn.getresponse()
        r.read()
        if r.status != 200 and r.status != 429:
            print("status", r.status, p, flush=True)
            sys.exit(1)
        n += 1
        print(n, flush=True)
`;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

Deno.test({
  name: "hostile: /health p99 under 100 ms while 4 clients run the heaviest queries on 1M events",
  // its server loads no BPF and runs as whoever runs the tests: make test-as-user would only
  // repeat it
  ignore: asUser,
  fn: heavyHealth,
});

async function heavyHealth() {
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT_DIR}tests/_heavy_server.ts`],
    cwd: ROOT_DIR,
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const clients: Deno.ChildProcess[] = [];
  try {
    const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = (await lines.read()).value ?? "";
    const port = Number(/listening (\d+)/.exec(first)?.[1]);
    assert.ok(port > 0, `the server said: ${first}`);
    lines.releaseLock();
    const url = `http://127.0.0.1:${port}`;

    // warm: the first summary computes its per-block aggregates, JIT settles
    for (const p of HEAVY) await (await fetch(url + p)).arrayBuffer();
    const probe = async (n: number) => {
      const latencies: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const res = await fetch(`${url}/health`);
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        assert.equal(res.status, 200);
        await new Promise((r) => setTimeout(r, 10));
      }
      return latencies.sort((a, b) => a - b);
    };
    // the machine's own noise, for the record: /health with no other client
    const idle = await probe(100);
    for (let i = 0; i < 4; i++) {
      const shift = [...HEAVY.slice(i), ...HEAVY.slice(0, i)];
      clients.push(
        // niced: the clients stand for other hosts; their own CPU is not the server's doing
        new Deno.Command("nice", {
          args: ["-n", "10", "python3", "-c", CLIENT, String(port), JSON.stringify(shift)],
          stdout: "piped",
          stderr: "inherit",
        }).spawn(),
      );
    }
    const progress = clients.map((c) => {
      const state = { count: 0 };
      (async () => {
        for await (const chunk of c.stdout.pipeThrough(new TextDecoderStream())) {
          const last = chunk.trim().split("\n").at(-1) ?? "";
          if (/^\d+$/.test(last)) state.count = Number(last);
        }
      })();
      return state;
    });
    await new Promise((r) => setTimeout(r, 1500)); // all four at work

    const latencies = await probe(300);
    const heavyDone = progress.reduce((n, p) => n + p.count, 0);
    const p50 = quantile(latencies, 0.5), p99 = quantile(latencies, 0.99);
    const report =
      `/health under 4 heavy clients: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${
        latencies.at(-1)!.toFixed(1)
      } ms; ${heavyDone}+ heavy queries answered meanwhile; ` +
      `with no client first: p99 ${quantile(idle, 0.99).toFixed(1)} ms, max ${
        idle.at(-1)!.toFixed(1)
      } ms`;
    console.log(report);
    assert.ok(heavyDone >= 20, `the heavy clients made progress (${heavyDone})`);
    assert.ok(p99 < 100, report);
    for (const c of clients) {
      assert.equal(
        await Promise.race([c.status.then((s) => s.code), Promise.resolve(-1)]),
        -1,
        "a client failed",
      );
    }
  } finally {
    for (const c of clients) {
      try {
        c.kill("SIGTERM");
      } catch {
        // exited
      }
      await c.status;
      await c.stdout.cancel().catch(() => {});
    }
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
}

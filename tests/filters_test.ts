/**
 * Filters end to end: processes in test cgroups (two systemd services and a Docker scope) make
 * loopback connects (refused, accepted, UDP, IPv4 and IPv6), UDP drops and DNS queries; then
 * every filter parameter, `!`, comma lists and CIDR prefixes must select exactly the events a
 * reference predicate over the unfiltered events selects, on the events, summary and top routes
 * alike; top-k counts must be exact; a live stream sends only what its filter matches; every
 * malformed value is a 400 naming its parameter. One server for the file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cidrHolds, parseCidr, parseIPv4, parseIPv6 } from "../src/net/cidr.ts";
import { hexId, PY_DNS, PY_TCP, PY_UDP, TestCgroups } from "./_cgroups.ts";
import {
  canRunPrivileged,
  dropReasonOf,
  freePort,
  privileged,
  type ServerHandle,
  startServer,
  TIMEOUT_SCALE,
  waitFor,
} from "./_server.ts";

type Event = Record<string, unknown> & { pid: number; unit: string | null };
type Pred = (e: Event) => boolean;

const DOCKER = hexId("filters-docker");

/** Python: TCP and UDP connects given as host:port:kind arguments; prints each errno. */
const PY_MANY = `import socket,sys
for a in sys.argv[1:]:
    host, port, kind = a.rsplit(":", 2)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    print("errno", s.connect_ex((host, int(port))))
    s.close()`;

function inCidr(ip: unknown, cidr: string): boolean {
  if (typeof ip !== "string") return false;
  const c = parseCidr(cidr)!;
  const v4 = parseIPv4(ip);
  const bytes = v4 ?? parseIPv6(ip);
  return bytes !== null && cidrHolds(c, v4 ? 4 : 6, bytes, 0);
}

async function all(server: ServerHandle, program: string, query: string): Promise<Event[]> {
  const body = await server.json<{ events: Event[]; truncated: boolean }>(
    `/api/programs/${program}/events?${query}&limit=10000`,
  );
  assert.equal(body.truncated, false);
  return body.events;
}

/** The events, summary and top routes of `program` with `query` all select what `pred` does. */
async function check(
  server: ServerHandle,
  program: string,
  scope: string,
  everything: Event[],
  query: string,
  pred: Pred,
  totalKey: string,
): Promise<void> {
  const expected = everything.filter(pred);
  // a parameter is given once: a query with its own cgroup= replaces the scope's
  if (
    query.split("&").some((p) => scope.split("&").some((q) => q.split("=")[0] === p.split("=")[0]))
  ) {
    scope = scope.split("&").filter((q) => !query.includes(`${q.split("=")[0]}=`)).join("&");
  }
  const got = await all(server, program, `${scope}&${query}`);
  const key = (e: Event) => `${e.timestamp_ms} ${e.pid} ${JSON.stringify(e)}`;
  assert.deepEqual(got.map(key).sort(), expected.map(key).sort(), `${program}?${query}`);
  assert.ok(
    expected.length > 0 || query.includes("none") || query.includes("!"),
    `${query} selects something`,
  );
  const summary = await server.json<Record<string, number>>(
    `/api/programs/${program}/summary?${scope}&${query}&duration=3600`,
  );
  assert.equal(summary[totalKey], expected.length, `${program} summary ${query}: ${totalKey}`);
  const top = await server.json<{ total: number; groups: { count: number }[] }>(
    `/api/programs/${program}/top?by=pid&${scope}&${query}&duration=3600&limit=1000`,
  );
  assert.equal(top.total, expected.length, `${program} top ${query}: total`);
  const byPid = new Map<number, number>();
  for (const e of expected) byPid.set(e.pid, (byPid.get(e.pid) ?? 0) + 1);
  assert.deepEqual(
    new Map(
      (top.groups as unknown as { pid: number; count: number }[]).map((g) => [g.pid, g.count]),
    ),
    byPid,
    `${program} top by pid ${query}`,
  );
}

Deno.test({
  name: privileged(
    "filters: every parameter, !, comma lists and CIDRs select exactly; top-k is exact",
  ),
  ignore: !canRunPrivileged,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const cgroups = new TestCgroups("filt");
    const dnsPort = freePort();
    let server: ServerHandle | undefined;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const open = (listener.addr as Deno.NetAddr).port;
    const accepting = (async () => {
      for await (const conn of listener) conn.close();
    })().catch(() => {});
    try {
      server = await startServer({ args: ["--dns-ports", String(dnsPort), "--dns-timeout", "1"] });
      const srv = server;
      const a = cgroups.make("system.slice/filt-a.service");
      const b = cgroups.make("system.slice/filt-b.service");
      const d = cgroups.make(`system.slice/docker-${DOCKER}.scope`);
      const scope = `cgroup=${cgroups.basePath}`;
      const closedA = freePort(), closedB = freePort(), udpPort = freePort();

      // connects: a refused x2 to 127.0.0.1:A, one ok; b refused to 127.0.0.2:B and [::1]:A;
      // the container: UDP "connect" (ok) to 127.0.0.3, refused to 127.0.0.1:B
      const pa = await cgroups.python(a, PY_MANY, [
        `127.0.0.1:${closedA}:tcp`,
        `127.0.0.1:${closedA}:tcp`,
        `127.0.0.1:${open}:tcp`,
      ]);
      const pb = await cgroups.python(b, PY_MANY, [
        `127.0.0.2:${closedB}:tcp`,
        `::1:${closedA}:tcp`,
      ]);
      const pd = await cgroups.python(d, PY_MANY, [
        `127.0.0.3:${udpPort}:udp`,
        `127.0.0.1:${closedB}:tcp`,
      ]);
      assert.deepEqual(pa.stdout.match(/errno \d+/g), ["errno 111", "errno 111", "errno 0"]);
      assert.deepEqual(pb.stdout.match(/errno \d+/g), ["errno 111", "errno 111"]);
      assert.deepEqual(pd.stdout.match(/errno \d+/g), ["errno 0", "errno 111"]);
      // drops: UDP to closed ports from a (x2, two ports) and d (x1)
      const da1 = await cgroups.python(a, PY_UDP, [String(udpPort)]);
      const da2 = await cgroups.python(a, PY_UDP, [String(closedB)]);
      const dd = await cgroups.python(d, PY_UDP, [String(udpPort)]);
      // DNS: a asks two names, b one (all time out)
      await cgroups.python(a, PY_DNS, ["one.filt.test", String(dnsPort)]);
      await cgroups.python(a, PY_DNS, ["two.filt.test", String(dnsPort)]);
      await cgroups.python(b, PY_DNS, ["three.other.test", String(dnsPort)]);

      const connections = await waitFor("the 7 connects", async () => {
        const e = await all(srv, "connection", scope);
        return e.length >= 7 ? e : undefined;
      });
      assert.equal(connections.length, 7);
      const lives = await waitFor("the 6 TCP connections", async () => {
        const e = await all(srv, "tcp_life", scope);
        return e.length >= 6 ? e : undefined;
      });
      // the DNS queries' datagrams are dropped too (nothing listens): left out here
      const dropScope = `${scope}&protocol=UDP&port=!${dnsPort}`;
      const drops = await waitFor("the UDP drops", async () => {
        const e = await all(srv, "packet_drop", dropScope);
        return e.length >= 3 ? e : undefined;
      });
      const queries = await waitFor("the 3 DNS timeouts", async () => {
        const e = await all(srv, "dns", scope);
        return e.length >= 3 ? e : undefined;
      });
      assert.equal(queries.length, 3);
      assert.deepEqual(drops.map((e) => e.pid).sort(), [da1.pid, da2.pid, dd.pid].sort());

      await t.step("connection: every field, !, comma lists, CIDRs, combined", async () => {
        const prefix = DOCKER.slice(0, 12);
        const cases: [string, Pred][] = [
          ["unit=filt-a.service", (e) => e.unit === "filt-a.service"],
          ["unit=filt-a.service,filt-b.service", (e) => e.unit !== `docker-${DOCKER}.scope`],
          ["unit=!filt-a.service", (e) => e.unit !== "filt-a.service"],
          ["unit=!filt-a.service,!filt-b.service", (e) => e.unit === `docker-${DOCKER}.scope`],
          [`container=${prefix}`, (e) => e.container_id === DOCKER],
          ["container=none", (e) => e.container_id === null],
          ["container=!none", (e) => e.container_id !== null],
          ["container_runtime=docker", (e) => e.container_runtime === "docker"],
          [`cgroup=${a.path}`, (e) => e.cgroup_path === a.path],
          ["destination=127.0.0.0/8", (e) => inCidr(e.destination_ip, "127.0.0.0/8")],
          ["destination=127.0.0.2", (e) => e.destination_ip === "127.0.0.2"],
          [
            "destination=127.0.0.2,127.0.0.3/32",
            (e) => ["127.0.0.2", "127.0.0.3"].includes(e.destination_ip as string),
          ],
          ["destination=!127.0.0.0/8", (e) => !inCidr(e.destination_ip, "127.0.0.0/8")],
          ["destination=::1", (e) => e.destination_ip === "::1"],
          ["destination=::/0", (e) => e.address_family === "AF_INET6"],
          [`port=${closedA}`, (e) => e.destination_port === closedA],
          [
            `port=${closedA},${closedB}`,
            (e) => [closedA, closedB].includes(e.destination_port as number),
          ],
          [`port=!${closedA}`, (e) => e.destination_port !== closedA],
          ["protocol=UDP", (e) => e.protocol === "UDP"],
          ["protocol=tcp,udp", (e) => ["TCP", "UDP"].includes(e.protocol as string)],
          ["protocol=!TCP", (e) => e.protocol !== "TCP"],
          ["family=ipv6", (e) => e.address_family === "AF_INET6"],
          ["family=AF_INET", (e) => e.address_family === "AF_INET"],
          ["result=ECONNREFUSED", (e) => e.result === "ECONNREFUSED"],
          ["result=!ok,!EINPROGRESS", (e) => e.result !== "ok" && e.result !== "EINPROGRESS"],
          ["result=ok", (e) => e.result === "ok"],
          ["uid=0", (e) => e.uid === 0],
          ["uid=!0", (e) => e.uid !== 0],
          [
            "unit=filt-a.service&result=ECONNREFUSED&destination=127.0.0.0/8",
            (e) =>
              e.unit === "filt-a.service" && e.result === "ECONNREFUSED" &&
              inCidr(e.destination_ip, "127.0.0.0/8"),
          ],
        ];
        for (const [query, pred] of cases) {
          await check(srv, "connection", scope, connections, query, pred, "total_attempts");
        }
      });

      await t.step("tcp_life, packet_drop and dns: their own fields", async () => {
        const life: [string, Pred][] = [
          ["outcome=refused", (e) => e.outcome === "refused"],
          ["outcome=!refused", (e) => e.outcome !== "refused"],
          ["direction=outbound,inbound", () => true],
          ["destination=::1", (e) => e.remote_ip === "::1"],
          [`port=${closedB}`, (e) => e.remote_port === closedB || e.local_port === closedB],
          [
            "unit=filt-b.service&family=ipv4",
            (e) => e.unit === "filt-b.service" && e.address_family === "AF_INET",
          ],
        ];
        for (const [q, pred] of life) {
          await check(
            srv,
            "tcp_life",
            `${scope}&direction=outbound`,
            lives,
            q,
            pred,
            "connections",
          );
        }
        const reason = dropReasonOf("NO_SOCKET") ?? "unknown";
        const drop: [string, Pred][] = [
          [`reason=${reason}`, (e) => e.reason === dropReasonOf("NO_SOCKET")],
          [`port=${udpPort}`, (e) => e.destination_port === udpPort || e.source_port === udpPort],
          [
            `port=!${udpPort},!${dnsPort}`,
            (e) => e.destination_port !== udpPort && e.source_port !== udpPort,
          ],
          ["source=127.0.0.0/8", (e) => inCidr(e.source_ip, "127.0.0.0/8")],
          [`container=${DOCKER}`, (e) => e.container_id === DOCKER],
          ["interface=lo", (e) => e.interface === "lo"],
        ];
        for (const [q, pred] of drop) {
          await check(
            srv,
            "packet_drop",
            dropScope,
            drops,
            q,
            pred,
            "events_in_window",
          );
        }
        const dns: [string, Pred][] = [
          ["name=*.filt.test", (e) => (e.query_name as string).endsWith(".filt.test")],
          [
            "name=three.other.test,one.filt.test",
            (e) => ["three.other.test", "one.filt.test"].includes(e.query_name as string),
          ],
          ["rcode=none", (e) => e.rcode === null],
          ["outcome=!timeout", (e) => e.outcome !== "timeout"],
          ["query_type=A", (e) => e.query_type === "A"],
          [
            `port=${dnsPort}&protocol=UDP`,
            (e) => e.server_port === dnsPort && e.transport === "udp",
          ],
          ["unit=filt-a.service", (e) => e.unit === "filt-a.service"],
        ];
        for (const [q, pred] of dns) await check(srv, "dns", scope, queries, q, pred, "queries");
      });

      await t.step(
        "top-k: exact counts and failures, combined keys, limit and the rest",
        async () => {
          const top = await srv.json<
            {
              total: number;
              groups: Record<string, unknown>[];
              other_groups: number;
              other_count: number;
              filter: Record<string, string[]>;
            }
          >(
            `/api/programs/connection/top?by=destination,unit&${scope}&duration=3600&limit=2`,
          );
          assert.equal(top.total, 7);
          assert.deepEqual(top.groups[0], {
            destination: `127.0.0.1:${closedA}`,
            unit: "filt-a.service",
            count: 2,
            failed: 2,
          });
          assert.equal(top.groups.length, 2);
          assert.equal((top.groups[1] as { count: number }).count, 1);
          assert.equal(top.other_groups, 4);
          assert.equal(top.other_count, 4);
          assert.deepEqual(top.filter, { cgroup: [cgroups.basePath] });
          const byResult = await srv.json<{ groups: Record<string, unknown>[] }>(
            `/api/programs/connection/top?by=unit,result&${scope}&duration=3600`,
          );
          assert.deepEqual(byResult.groups, [
            { unit: "filt-a.service", result: "ECONNREFUSED", count: 2, failed: 2 },
            { unit: "filt-b.service", result: "ECONNREFUSED", count: 2, failed: 2 },
            { unit: "filt-a.service", result: "ok", count: 1, failed: 0 },
            { unit: `docker-${DOCKER}.scope`, result: "ok", count: 1, failed: 0 },
            { unit: `docker-${DOCKER}.scope`, result: "ECONNREFUSED", count: 1, failed: 1 },
          ]);
          const names = await srv.json<{ groups: Record<string, unknown>[] }>(
            `/api/programs/dns/top?by=name&${scope}&duration=3600&name=*.filt.test`,
          );
          assert.deepEqual(names.groups, [
            { name: "one.filt.test", count: 1, failed: 1 },
            { name: "two.filt.test", count: 1, failed: 1 },
          ]);
        },
      );

      await t.step(
        "/api/events takes the shared fields; a program without one gives none",
        async () => {
          const list = await srv.json<{ events: Event[]; filter: Record<string, string[]> }>(
            `/api/events?${scope}&unit=filt-b.service&destination=127.0.0.5/8&limit=1000`,
          );
          assert.deepEqual(list.filter, {
            cgroup: [cgroups.basePath],
            unit: ["filt-b.service"],
            destination: ["127.0.0.0/8"],
          });
          const types = new Set(list.events.map((e) => e.type));
          assert.ok(types.has("connection") && types.has("tcp_life"), [...types].join());
          assert.ok(list.events.every((e) => e.unit === "filt-b.service"));
          const uid = await srv.json<{ events: Event[] }>(`/api/events?${scope}&uid=0&limit=1000`);
          assert.ok(
            uid.events.every((e) => e.type === "connection" || e.type === "dns"),
            "uid: connection and dns only",
          );
        },
      );

      await t.step("the live stream sends only what its filter matches", async () => {
        const ctl = new AbortController();
        const res = await fetch(
          `${srv.url}/api/events/stream?type=connection&unit=filt-b.service&result=!ok`,
          { signal: ctl.signal },
        ).catch((err) => {
          throw err;
        });
        assert.equal(res.status, 400, "result is no shared field: the stream refuses it");
        await res.body?.cancel();
        const stream = await fetch(
          `${srv.url}/api/events/stream?type=connection&unit=filt-b.service`,
          { signal: ctl.signal },
        );
        assert.equal(stream.status, 200);
        const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
        const pa2 = await cgroups.python(a, PY_TCP, [String(closedA)]);
        const pb2 = await cgroups.python(b, PY_TCP, [String(closedA)]);
        let text = "";
        const deadline = Date.now() + 10_000 * TIMEOUT_SCALE;
        while (!text.includes(`"pid":${pb2.pid}`) && Date.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
        ctl.abort();
        await reader.cancel().catch(() => {});
        assert.ok(text.includes(`"pid":${pb2.pid}`), text);
        assert.ok(!text.includes(`"pid":${pa2.pid}`), "filt-a's connect is not sent");
      });

      await t.step("malformed or unknown values: 400 naming the parameter", async () => {
        const bad: [string, string, string][] = [
          ["connection", "destination=300.1.1.1", "destination"],
          ["connection", "destination=10.0.0.0/33", "destination"],
          ["connection", "port=70000", "port"],
          ["connection", "port=9-3", "port"],
          ["connection", "result=EBOGUS", "result"],
          ["connection", "family=AF_X", "family"],
          ["connection", "protocol=FOO", "protocol"],
          ["connection", "unit=bad%20name", "unit"],
          ["connection", "container=xyz", "container"],
          ["connection", "uid=-1", "uid"],
          ["connection", "unit=", "unit"],
          ["connection", "unit=a,,b", "unit"],
          ["connection", "cgroup=system.slice", "cgroup"],
          ["connection", "outcome=refused", "outcome"],
          ["tcp_life", "outcome=bogus", "outcome"],
          ["tcp_life", "direction=sideways", "direction"],
          ["packet_drop", "reason=NO_SUCH_REASON", "reason"],
          ["dns", "rcode=BOGUS", "rcode"],
          ["dns", "query_type=NOPE", "query_type"],
        ];
        for (const [program, query, param] of bad) {
          for (const route of ["events", "summary", "top?by=pid&"]) {
            const path = route.startsWith("top")
              ? `/api/programs/${program}/${route}${query}`
              : `/api/programs/${program}/${route}?${query}`;
            const res = await fetch(srv.url + path);
            const body = await res.json();
            assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
            assert.match(body.error, new RegExp(`'${param}'`), `${path}: ${body.error}`);
          }
        }
        const by = await fetch(`${srv.url}/api/programs/connection/top?by=nope`);
        assert.equal(by.status, 400);
        assert.match((await by.json()).error, /'by'.*'nope'/);
        const events = await fetch(`${srv.url}/api/events?reason=NO_SOCKET`);
        assert.equal(events.status, 400);
        assert.match((await events.json()).error, /unknown query parameter 'reason'/);
      });
    } finally {
      listener.close();
      await accepting;
      await server?.stop();
      await cgroups.cleanup();
    }
  },
});

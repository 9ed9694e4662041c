/**
 * The dns program end to end: a real DNS server (dnsmasq) in a network namespace this file
 * creates, answering a test zone and NXDOMAIN for the rest of it, a UDP socket there that never
 * answers, and real clients in that namespace (glibc's getaddrinfo from Python, which sends A and
 * AAAA at once with sendmmsg; dig over UDP and TCP, IPv4 and IPv6; Python's sendto on an
 * unconnected socket, as musl does). Each query comes back with its name, type, rcode, answers,
 * server, latency and the pid that asked; a connect() to an answered address carries the name.
 * One server (with a 1.5 s DNS timeout) and one namespace for the file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cgroup2Root } from "../src/kernel/cgroup.ts";
import {
  canRunPrivileged,
  loadedPrograms,
  privileged,
  programIdsOf,
  runCommand,
  type ServerHandle,
  spawnCollecting,
  startServer,
  waitFor,
} from "./_server.ts";

/** The fields of a dns event the tests read. */
interface DnsEvent {
  type: string;
  wall_time: string;
  timestamp_ms: number;
  pid: number;
  command: string;
  tid: number;
  uid: number;
  cgroup_id: number;
  netns: number;
  owner_known: boolean;
  query_time: string;
  query_name: string;
  query_type: string;
  transport: "udp" | "tcp";
  server: string;
  server_ip: string;
  server_port: number;
  client_port: number;
  id: number;
  rcode: string | null;
  outcome: "answered" | "error" | "timeout";
  answers: { name: string; type: string; data: string }[];
  answer_count: number | null;
  answers_complete: boolean;
  ttl: number | null;
  latency_ns: number | null;
  truncated: boolean;
  attempts: number;
}

interface DnsSummary {
  program: string;
  queries: number;
  by_outcome: Record<string, number>;
  by_rcode: Record<string, number>;
  by_type: Record<string, number>;
  by_transport: Record<string, number>;
  latency_ns: { p50: number | null; p99: number | null; max: number | null };
  top_names: { name: string; queries: number; failures: number }[];
  top_failing_names: { name: string; queries: number; failures: number }[];
  by_process: { pid: number; command: string; queries: number; failures: number }[];
  not_recorded: Record<string, number>;
  pending: number;
}

/** The DNS timeout the server runs with here (--dns-timeout). */
const DNS_TIMEOUT_S = 1.5;
/** A TXT record longer than the 512 bytes the kernel copies. */
const BIG_TXT = ["a", "b", "c"].map((c) => c.repeat(200));

async function must(command: string, args: string[]): Promise<string> {
  const out = await runCommand(command, args, { timeoutMs: 30_000 });
  if (out.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${out.code}): ${out.stderr}`);
  }
  return out.stdout;
}

/** A network namespace with lo up, its resolv.conf, dnsmasq and a silent UDP socket. */
interface Zone extends AsyncDisposable {
  readonly ns: string;
  readonly inode: number;
  dnsmasqLog(): string;
}

let pythonPath: string | undefined;
async function python(): Promise<string> {
  return pythonPath ??= (await must("python3", ["-c", "import sys; print(sys.executable)"])).trim();
}

/** Binds 127.0.0.2:53 and reads what comes, never answering: the server of timeouts. */
const PY_SILENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 53))
print("ready", flush=True)
while True:
    s.recvfrom(4096)
`;

async function createZone(): Promise<Zone> {
  const ns = `ebpfsrv-dns-${Deno.pid}`;
  await must("ip", ["netns", "add", ns]);
  const etc = `/etc/netns/${ns}`;
  const stops: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await Deno.remove(etc, { recursive: true }).catch(() => {});
    await runCommand("ip", ["netns", "del", ns]);
  };
  try {
    await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    const inode = Number((await must("stat", ["-L", "-c", "%i", `/run/netns/${ns}`])).trim());
    await Deno.mkdir(etc, { recursive: true });
    // under `ip netns exec`, this file is the namespace's /etc/resolv.conf
    await Deno.writeTextFile(`${etc}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:2\n");
    const dnsmasq = spawnCollecting("ip", {
      args: [
        "netns",
        "exec",
        ns,
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--user=root",
        "--bind-interfaces",
        "--listen-address=127.0.0.1,::1",
        "--log-queries",
        "--log-facility=-",
        "--local=/test/",
        "--address=/name.test/127.0.0.5",
        "--address=/name.test/::5",
        "--host-record=host.test,127.0.0.6",
        "--cname=alias.test,host.test",
        `--txt-record=big.test,${BIG_TXT.join(",")}`,
      ],
    });
    stops.push(() => dnsmasq.stop());
    const silent = new Deno.Command("ip", {
      args: ["netns", "exec", ns, await python(), "-S", "-u", "-c", PY_SILENT],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    stops.push(async () => {
      try {
        silent.kill("SIGKILL");
      } catch {
        // exited
      }
      await silent.status;
    });
    const reader = silent.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    assert.match(first.value ?? "", /ready/, "the silent socket is bound");
    reader.releaseLock();
    silent.stdout.cancel().catch(() => {});
    await waitFor("dnsmasq to answer", async () => {
      const out = await runCommand("ip", [
        "netns",
        "exec",
        ns,
        "dig",
        "@127.0.0.1",
        "+short",
        "+tries=1",
        "+time=1",
        "name.test",
      ]);
      if (dnsmasq.exit()) throw new Error(`dnsmasq exited: ${dnsmasq.stderr()}`);
      return out.stdout.trim() === "127.0.0.5" ? true : undefined;
    });
    return { ns, inode, dnsmasqLog: dnsmasq.stderr, [Symbol.asyncDispose]: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** What a Python client reports: itself, its cgroup, and what it did. */
interface PyReport {
  pid: number;
  comm: string;
  cgroup: number;
  addresses?: string[];
  errno?: number;
  port?: number;
  answer?: number;
}

/**
 * getaddrinfo(argv[2]) through glibc, then a TCP connect to the first IPv4 address it gave, on
 * port argv[3]; or (argv[1] == "sendto") one query for argv[2] sent with sendto() on an
 * unconnected socket to argv[3] (a v4 or v6 address), and the answer's length.
 */
const PY_CLIENT = `
import json, os, socket, struct, sys
line = [l for l in open("/proc/self/cgroup").read().split("\\n") if l.startswith("0::")][0]
comm = open("/proc/self/comm").read().strip()
out = dict(pid=os.getpid(), comm=comm, cgroup_path=line[3:])
if sys.argv[1] == "gai":
    res = socket.getaddrinfo(sys.argv[2], int(sys.argv[3]), type=socket.SOCK_STREAM)
    out["addresses"] = sorted(set(r[4][0] for r in res))
    v4 = [a for a in out["addresses"] if ":" not in a][0]
    s = socket.socket()
    out["errno"] = s.connect_ex((v4, int(sys.argv[3])))
    s.close()
else:
    name = sys.argv[2].encode()
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l for l in name.split(b".")) + b"\\0" + struct.pack(">HH", 1, 1)
    fam = socket.AF_INET6 if ":" in sys.argv[3] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(q, (sys.argv[3], 53))
    data, _ = s.recvfrom(4096)
    out["answer"] = len(data)
    out["port"] = s.getsockname()[1]
print(json.dumps(out))
`;

async function pyClient(zone: Zone, args: string[]): Promise<PyReport> {
  const out = await must("ip", [
    "netns",
    "exec",
    zone.ns,
    await python(),
    "-S",
    "-c",
    PY_CLIENT,
    ...args,
  ]);
  const report = JSON.parse(out.trim().split("\n").at(-1)!);
  // the cgroup's id is its directory's inode (stat here: `ip netns exec` mounts its own /sys)
  const path = report.cgroup_path === "/" ? "" : report.cgroup_path;
  return { ...report, cgroup: Number(Deno.statSync(cgroup2Root()! + path).ino) } as PyReport;
}

/** Runs dig in the namespace; returns its pid (ip netns exec execs it in place) and output. */
async function dig(
  zone: Zone,
  args: string[],
): Promise<{ pid: number; code: number; stdout: string }> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", zone.ns, "dig", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = await child.output();
  return { pid: child.pid, code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** The dns events of `pid`, waiting until `n` are there (newest first). */
async function queriesOf(server: ServerHandle, pid: number, n: number): Promise<DnsEvent[]> {
  return await waitFor(`${n} dns event(s) of pid ${pid}`, async () => {
    const body = await server.json<{ events: DnsEvent[] }>(
      `/api/programs/dns/events?pid=${pid}&limit=1000`,
    );
    return body.events.length >= n ? body.events : undefined;
  }, { timeoutMs: 20_000, intervalMs: 100 });
}

function assertQuery(e: DnsEvent, expected: Partial<DnsEvent>, zone: Zone): void {
  const show = JSON.stringify(e);
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(e[key as keyof DnsEvent], value, `${key} of ${show}`);
  }
  assert.equal(e.type, "dns");
  assert.equal(e.owner_known, true, show);
  assert.equal(e.netns, zone.inode, `netns of ${show}`);
  assert.ok(e.client_port > 0, show);
  assert.ok(e.id >= 0 && e.id <= 0xffff, show);
  assert.ok(Date.parse(e.query_time) <= Date.parse(e.wall_time) + 1, show);
  if (e.outcome === "timeout") {
    assert.equal(e.latency_ns, null, show);
    assert.equal(e.rcode, null, show);
    assert.equal(e.answer_count, null, show);
    assert.ok(
      Math.abs(e.timestamp_ms - Date.parse(e.query_time) - DNS_TIMEOUT_S * 1000) < 2,
      `a timeout ends at its deadline: ${show}`,
    );
  } else {
    // a real round trip through a real server: more than nothing, less than the timeout
    assert.ok(e.latency_ns! > 1_000 && e.latency_ns! < DNS_TIMEOUT_S * 1e9, `latency of ${show}`);
    assert.ok(
      Math.abs(e.timestamp_ms - Date.parse(e.query_time) - e.latency_ns! / 1e6) < 1.5,
      `wall_time is query_time plus latency: ${show}`,
    );
  }
}

Deno.test({
  name: privileged(
    "dns: real queries to a real server come back with name, answers, latency and pid",
  ),
  ignore: !canRunPrivileged,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using zone = await createZone();
    await using server = await startServer({ args: ["--dns-timeout", String(DNS_TIMEOUT_S)] });
    const start = Date.now();
    const digPids: number[] = [];

    await t.step(
      "getaddrinfo: A and AAAA on one socket, then a connect that has the name",
      async () => {
        const py = await pyClient(zone, ["gai", "name.test", "9"]);
        assert.deepEqual(py.addresses, ["127.0.0.5", "::5"]);
        const events = await queriesOf(server, py.pid, 2);
        assert.equal(events.length, 2, JSON.stringify(events));
        const byType = new Map(events.map((e) => [e.query_type, e]));
        for (const [type, data] of [["A", "127.0.0.5"], ["AAAA", "::5"]]) {
          const e = byType.get(type);
          assert.ok(e, `a ${type} query: ${JSON.stringify(events)}`);
          assertQuery(e, {
            pid: py.pid,
            command: py.comm,
            uid: 0,
            cgroup_id: py.cgroup,
            query_name: "name.test",
            transport: "udp",
            server: "127.0.0.1:53",
            rcode: "NOERROR",
            outcome: "answered",
            answers: [{ name: "name.test", type, data }],
            answer_count: 1,
            answers_complete: true,
            truncated: false,
            attempts: 1,
          }, zone);
        }
        // glibc sent both on one socket (sendmmsg): the same client port, two ids
        assert.equal(byType.get("A")!.client_port, byType.get("AAAA")!.client_port);
        assert.notEqual(byType.get("A")!.id, byType.get("AAAA")!.id);

        const connects = await waitFor("the connect() of the getaddrinfo client", async () => {
          const body = await server.json<{ events: Record<string, unknown>[] }>(
            `/api/programs/connection/events?pid=${py.pid}&limit=100`,
          );
          const tcp = body.events.filter((e) => e.destination === "127.0.0.5:9");
          return tcp.length ? tcp : undefined;
        });
        assert.equal(connects[0].destination_name, "name.test", JSON.stringify(connects[0]));
        assert.equal(connects[0].result, "ECONNREFUSED");
        const lives = await waitFor("the tcp_life record of that connect", async () => {
          const body = await server.json<{ events: Record<string, unknown>[] }>(
            `/api/programs/tcp_life/events?pid=${py.pid}&limit=100`,
          );
          const mine = body.events.filter((e) => e.remote === "127.0.0.5:9");
          return mine.length ? mine : undefined;
        });
        assert.equal(lives[0].remote_name, "name.test", JSON.stringify(lives[0]));
        assert.equal(lives[0].outcome, "refused");
      },
    );

    await t.step("dig over UDP: a CNAME and its address; over IPv6 too", async () => {
      const out = await dig(zone, ["@127.0.0.1", "+tries=1", "+time=3", "alias.test", "A"]);
      assert.equal(out.code, 0, out.stdout);
      digPids.push(out.pid);
      const [e] = await queriesOf(server, out.pid, 1);
      assertQuery(e, {
        pid: out.pid,
        query_name: "alias.test",
        query_type: "A",
        transport: "udp",
        server: "127.0.0.1:53",
        server_port: 53,
        rcode: "NOERROR",
        outcome: "answered",
        answers: [
          { name: "alias.test", type: "CNAME", data: "host.test" },
          { name: "host.test", type: "A", data: "127.0.0.6" },
        ],
        answer_count: 2,
      }, zone);

      const six = await dig(zone, ["@::1", "+tries=1", "+time=3", "name.test", "AAAA"]);
      assert.equal(six.code, 0, six.stdout);
      digPids.push(six.pid);
      const [e6] = await queriesOf(server, six.pid, 1);
      assertQuery(e6, {
        pid: six.pid,
        query_type: "AAAA",
        server: "[::1]:53",
        server_ip: "::1",
        rcode: "NOERROR",
        answers: [{ name: "name.test", type: "AAAA", data: "::5" }],
      }, zone);
    });

    await t.step("dig over TCP: NXDOMAIN for a name the zone does not have", async () => {
      const out = await dig(zone, ["+tcp", "@127.0.0.1", "+tries=1", "+time=3", "nope.test", "A"]);
      assert.match(out.stdout, /status: NXDOMAIN/);
      digPids.push(out.pid);
      const [e] = await queriesOf(server, out.pid, 1);
      assertQuery(e, {
        pid: out.pid,
        query_name: "nope.test",
        query_type: "A",
        transport: "tcp",
        server: "127.0.0.1:53",
        rcode: "NXDOMAIN",
        outcome: "answered",
        answers: [],
        answer_count: 0,
      }, zone);
    });

    await t.step("a server that never answers: a timeout after --dns-timeout", async () => {
      const out = await dig(zone, ["@127.0.0.2", "+tries=1", "+time=2", "slow.test", "A"]);
      assert.notEqual(out.code, 0, "dig got no answer");
      digPids.push(out.pid);
      const [e] = await queriesOf(server, out.pid, 1);
      assertQuery(e, {
        pid: out.pid,
        query_name: "slow.test",
        server: "127.0.0.2:53",
        outcome: "timeout",
        answers: [],
        attempts: 1,
      }, zone);
    });

    await t.step("sendto() on unconnected sockets, IPv4 and IPv6, keeps the owner", async () => {
      for (const to of ["127.0.0.1", "::1"]) {
        const py = await pyClient(zone, ["sendto", "host.test", to]);
        assert.ok(py.answer! > 12);
        const [e] = await queriesOf(server, py.pid, 1);
        assertQuery(e, {
          pid: py.pid,
          command: py.comm,
          cgroup_id: py.cgroup,
          query_name: "host.test",
          client_port: py.port,
          id: 0x4242,
          rcode: "NOERROR",
          answers: [{ name: "host.test", type: "A", data: "127.0.0.6" }],
        }, zone);
      }
    });

    await t.step(
      "an answer longer than the 512 bytes copied says its answers are incomplete",
      async () => {
        const before = await server.json<DnsSummary>("/api/programs/dns/summary?duration=600");
        const out = await dig(zone, [
          "@127.0.0.1",
          "+tries=1",
          "+time=3",
          "+bufsize=4096",
          "big.test",
          "TXT",
        ]);
        assert.equal(out.code, 0, out.stdout);
        digPids.push(out.pid);
        const [e] = await queriesOf(server, out.pid, 1);
        assertQuery(e, {
          query_name: "big.test",
          query_type: "TXT",
          rcode: "NOERROR",
          answer_count: 1,
          answers_complete: false,
          answers: [],
        }, zone);
        const after = await server.json<DnsSummary>("/api/programs/dns/summary?duration=600");
        assert.ok(
          after.not_recorded.answers_cut >= before.not_recorded.answers_cut + 1,
          `answers_cut counted: ${JSON.stringify(after.not_recorded)}`,
        );
      },
    );

    await t.step("summary: by rcode, outcome, type and process; failing names", async () => {
      const duration = Math.ceil((Date.now() - start) / 1000) + 5;
      for (const pid of digPids) {
        const s = await server.json<DnsSummary>(
          `/api/programs/dns/summary?pid=${pid}&duration=${duration}`,
        );
        assert.equal(s.program, "dns");
        assert.equal(s.queries, 1, JSON.stringify(s));
        assert.equal(s.by_process.length, 1);
        assert.equal(s.by_process[0].pid, pid);
      }
      const [, , nope, slow] = digPids;
      const s = await server.json<DnsSummary>(
        `/api/programs/dns/summary?duration=${duration}`,
      );
      assert.ok(s.queries >= 9, JSON.stringify(s));
      assert.ok(s.by_rcode.NXDOMAIN >= 1 && s.by_rcode.NOERROR >= 7, JSON.stringify(s.by_rcode));
      assert.ok(s.by_outcome.timeout >= 1 && s.by_outcome.answered >= 8, JSON.stringify(s));
      assert.ok(s.by_type.A >= 4 && s.by_type.AAAA >= 2 && s.by_type.TXT >= 1);
      assert.ok(s.by_transport.tcp >= 1);
      assert.ok(s.latency_ns.p50! > 0 && s.latency_ns.max! < DNS_TIMEOUT_S * 1e9);
      const failing = new Map(s.top_failing_names.map((n) => [n.name, n]));
      assert.ok(failing.get("nope.test")!.failures >= 1, JSON.stringify(s.top_failing_names));
      assert.ok(failing.get("slow.test")!.failures >= 1);
      assert.ok(!failing.has("name.test"), "name.test never failed");
      for (const pid of [nope, slow]) {
        const row = (await server.json<DnsSummary>(
          `/api/programs/dns/summary?pid=${pid}&duration=${duration}`,
        )).by_process[0];
        assert.equal(row.failures, 1);
      }
    });

    await t.step("/metrics: queries by outcome and rcode, a latency histogram", async () => {
      const res = await fetch(`${server.url}/metrics`);
      const text = await res.text();
      const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
      assert.ok(
        value(/^ebpf_server_dns_queries_total\{outcome="timeout",rcode="none"\} (\d+)$/m) >= 1,
      );
      assert.ok(
        value(/^ebpf_server_dns_queries_total\{outcome="answered",rcode="NXDOMAIN"\} (\d+)$/m) >= 1,
      );
      assert.ok(value(/^ebpf_server_dns_query_duration_seconds_count (\d+)$/m) >= 8);
      assert.match(text, /^ebpf_server_dns_query_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
      assert.match(text, /^ebpf_server_dns_not_recorded_total\{kind="malformed"\} \d+$/m);
    });

    await t.step(
      "every dns hook is attached, on the cgroup v2 root, and none after SIGTERM",
      async () => {
        const caps = await server.json<
          {
            programs: {
              name: string;
              hooks: { program: string; attach: string; attached: boolean }[];
            }[];
          }
        >(
          "/api/capabilities",
        );
        const hooks = caps.programs.find((p) => p.name === "dns")!.hooks;
        assert.deepEqual(hooks.map((h) => [h.attach, h.attached]).sort(), [
          ["cgroup/connect4", true],
          ["cgroup/connect6", true],
          ["cgroup/sendmsg4", true],
          ["cgroup/sendmsg6", true],
          ["cgroup_skb/egress", true],
          ["cgroup_skb/ingress", true],
        ]);
        const ids = programIdsOf(server.pid);
        const mine = (await loadedPrograms()).filter((p) =>
          ids.has(p.id) && p.name.startsWith("dns_")
        );
        assert.equal(mine.length, 6, JSON.stringify(mine));
        assert.equal(await server.stop(), 0);
        const left = new Set((await loadedPrograms()).map((p) => p.id));
        assert.deepEqual(mine.filter((p) => left.has(p.id)), [], "no dns program left loaded");
      },
    );
  },
});

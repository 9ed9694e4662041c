import assert from "node:assert/strict";
import { CAPABILITIES, checkPreflight, type PreflightFacts, setprivCaps } from "./preflight.ts";

const bit = (name: string) => 1n << BigInt(CAPABILITIES.find((c) => c.name === name)!.bit);
const ALL = CAPABILITIES.reduce((m, c) => m | (1n << BigInt(c.bit)), 0n);
const CAP_SYS_ADMIN = 1n << 21n;
const ok: PreflightFacts = { effective: ALL, tracefs: "readable", kallsyms: true, btf: true };

const ALL_PROGRAMS = ["connection", "packet_drop", "tcp_life", "dns"];

Deno.test("preflight: the five capabilities suffice, with nothing to warn about", () => {
  assert.deepEqual(checkPreflight(ok, ALL_PROGRAMS), { problem: null, warnings: [] });
  assert.equal(setprivCaps(), "+bpf,+perfmon,+dac_read_search,+net_admin,+syslog");
});

Deno.test("preflight: CAP_NET_ADMIN is needed only with the dns program", () => {
  const facts = { ...ok, effective: ALL & ~bit("CAP_NET_ADMIN") };
  const { problem } = checkPreflight(facts, ALL_PROGRAMS);
  assert.match(problem!, /^it lacks CAP_NET_ADMIN \(to load the dns program's cgroup_skb /);
  assert.match(problem!, /or leave dns out of --programs \(connection,packet_drop,tcp_life\)$/);
  assert.equal(checkPreflight(facts, ["connection", "packet_drop", "tcp_life"]).problem, null);
  // CAP_SYS_ADMIN stands in for it too
  assert.equal(
    checkPreflight({ ...facts, effective: facts.effective | CAP_SYS_ADMIN }, ALL_PROGRAMS).problem,
    null,
  );
});

Deno.test("preflight: a missing required capability is named with what it is for", () => {
  for (const name of ["CAP_BPF", "CAP_PERFMON"]) {
    const { problem } = checkPreflight({ ...ok, effective: ALL & ~bit(name) });
    assert.ok(problem, name);
    assert.match(problem, new RegExp(`^it lacks ${name} \\(to [^)]+\\): run it as root`));
    assert.match(problem, /AmbientCapabilities=/);
    assert.equal(problem.split(". ").length, 1, `one sentence: ${problem}`);
  }
  // tracefs is judged by reading it: without CAP_DAC_READ_SEARCH it is unreadable
  const { problem } = checkPreflight({ ...ok, tracefs: "unreadable" });
  assert.match(problem!, /^it lacks CAP_DAC_READ_SEARCH \(to read the tracepoint ids in tracefs/);
  // nothing at all: every required one in one sentence
  const none = checkPreflight({ ...ok, effective: 0n, tracefs: "unreadable" }).problem!;
  assert.match(none, /^it lacks CAP_BPF \(.*\), CAP_PERFMON \(.*\) and CAP_DAC_READ_SEARCH \(/);
  const noneDns = checkPreflight({ ...ok, effective: 0n, tracefs: "unreadable" }, ["dns"]).problem!;
  assert.match(noneDns, /CAP_DAC_READ_SEARCH \(.*\) and CAP_NET_ADMIN \(/);
  assert.doesNotMatch(noneDns, /leave dns out/, "more than dns's capability is missing");
});

Deno.test("preflight: CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON and may mount tracefs", () => {
  const admin = { ...ok, effective: CAP_SYS_ADMIN, tracefs: "unmounted" as const };
  assert.equal(checkPreflight(admin).problem, null);
  const { problem } = checkPreflight({ ...ok, tracefs: "unmounted" });
  assert.match(problem!, /^tracefs is not mounted and mounting it needs CAP_SYS_ADMIN/);
});

Deno.test("preflight: without CAP_SYSLOG it starts and warns that location_symbol is null", () => {
  const result = checkPreflight({ ...ok, effective: ALL & ~bit("CAP_SYSLOG"), kallsyms: false });
  assert.equal(result.problem, null);
  assert.equal(result.warnings.length, 1);
  assert.match(result.warnings[0], /location_symbol .* null: grant CAP_SYSLOG/);
});

Deno.test("preflight: Debian's perf_event_paranoid 3 needs CAP_SYS_ADMIN, and says how to lower it", () => {
  const { problem } = checkPreflight({ ...ok, perfEventParanoid: 3 }, ALL_PROGRAMS);
  assert.match(problem!, /^kernel\.perf_event_paranoid is 3 \(Debian's default\)/);
  assert.match(problem!, /sysctl -w kernel\.perf_event_paranoid=2/);
  const admin = { ...ok, effective: ALL | CAP_SYS_ADMIN, perfEventParanoid: 3 };
  assert.equal(checkPreflight(admin, ALL_PROGRAMS).problem, null);
  for (const level of [2, 1, -1, null]) {
    assert.equal(checkPreflight({ ...ok, perfEventParanoid: level }).problem, null, `${level}`);
  }
  // a missing capability is named first: it is the one to fix first
  const both = checkPreflight({ ...ok, effective: ALL & ~bit("CAP_BPF"), perfEventParanoid: 3 });
  assert.match(both.problem!, /^it lacks CAP_BPF/);
});

Deno.test("preflight: a kernel without BTF is refused", () => {
  assert.match(checkPreflight({ ...ok, btf: false }).problem!, /no BTF/);
});

import assert from "node:assert/strict";
import { CAPABILITIES, checkPreflight, type PreflightFacts, setprivCaps } from "./preflight.ts";

const bit = (name: string) => 1n << BigInt(CAPABILITIES.find((c) => c.name === name)!.bit);
const ALL = CAPABILITIES.reduce((m, c) => m | (1n << BigInt(c.bit)), 0n);
const CAP_SYS_ADMIN = 1n << 21n;
const ok: PreflightFacts = { effective: ALL, tracefs: "readable", kallsyms: true, btf: true };

Deno.test("preflight: the four capabilities suffice, with nothing to warn about", () => {
  assert.deepEqual(checkPreflight(ok), { problem: null, warnings: [] });
  assert.equal(setprivCaps(), "+bpf,+perfmon,+dac_read_search,+syslog");
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

Deno.test("preflight: a kernel without BTF is refused", () => {
  assert.match(checkPreflight({ ...ok, btf: false }).problem!, /no BTF/);
});

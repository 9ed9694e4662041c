/**
 * The files in deploy/ used as written: the systemd unit passes `systemd-analyze verify` and
 * `systemd-analyze security` rates it 3.5 or lower; its ExecStart arguments, Environment=, user
 * (a uid with no account, as DynamicUser= gives) and capabilities (setpriv) start the real
 * server with every program running, which stops with exit 0 on the unit's KillSignal; traced
 * with strace meanwhile, it makes no system call that the unit's SystemCallFilter= refuses and
 * opens no socket family that RestrictAddressFamilies= refuses. The Prometheus scrape config
 * passes `promtool check config`.
 *
 * systemd-analyze, strace and promtool are needed: when `CI` is set a missing one fails the test
 * (CI installs Debian's `systemd`, `strace` and `prometheus` packages); locally the test is
 * ignored (strace: the filter is not checked) and its name says why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CAPABILITIES } from "../src/preflight.ts";
import {
  assertCredentials,
  canRunPrivileged,
  freePort,
  GiveUp,
  inCI,
  mainCommand,
  privileged,
  ROOT_DIR,
  runCommand,
  spawnCollecting,
  testUid,
  waitFor,
  which,
} from "./_server.ts";

const UNIT_PATH = `${ROOT_DIR}deploy/ebpf-server.service`;
const PROMETHEUS_YML = `${ROOT_DIR}deploy/prometheus.yml`;

const SYSTEMD_ANALYZE = which("systemd-analyze");
const PROMTOOL = which("promtool");
const STRACE = which("strace");
/** The highest `systemd-analyze security` exposure the unit may have (Debian's prometheus: 4.0). */
const MAX_EXPOSURE = 3.5;

/** Ignored locally when `binary` is missing (and says so); never ignored in CI. */
function needs(binary: string, path: string | undefined, name: string) {
  if (!path && !inCI) return { name: `[ignored: ${binary} not installed] ${name}`, ignore: true };
  return { name, ignore: false };
}

function required(binary: string, path: string | undefined, pkg: string): string {
  if (!path) throw new Error(`${binary} is not on PATH; install Debian's '${pkg}' package`);
  return path;
}

// ---------------------------------------------------------------------------------------------
// The unit file, read as systemd reads it (the subset this unit may use)

interface UnitLine {
  /** 0-based line index in the file where the entry starts. */
  line: number;
  section: string;
  key: string;
  value: string;
}

/** Entries of a unit file: comments and blank lines skipped, continuation lines joined. */
function parseUnit(text: string): UnitLine[] {
  const entries: UnitLine[] = [];
  const lines = text.split("\n");
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i].trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) {
      line = line.slice(0, -1) + " " + lines[++i].trim();
    }
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(eq > 0, `unit line ${start + 1} is neither a section nor KEY=VALUE: ${line}`);
    entries.push({
      line: start,
      section,
      key: line.slice(0, eq).trim(),
      value: line.slice(eq + 1).trim(),
    });
  }
  return entries;
}

/**
 * Splits a command line or an Environment= value into words as systemd does: whitespace
 * separates, "double" and 'single' quotes group, backslash escapes. Specifiers (%) and
 * variable expansion ($) are not resolved: the test refuses them rather than guess.
 */
function splitWords(value: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "%" || (c === "$" && quote !== "'")) {
      throw new Error(`'${value}' uses ${c}, which this test does not expand; extend the test`);
    }
    if (c === "\\" && i + 1 < value.length) {
      const n = value[++i];
      word += n === "n" ? "\n" : n === "t" ? "\t" : n;
      inWord = true;
    } else if (quote) {
      if (c === quote) quote = null;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  assert.equal(quote, null, `unbalanced quote in '${value}'`);
  if (inWord) words.push(word);
  return words;
}

/** What the test uses of the unit. */
interface Unit {
  text: string;
  entries: UnitLine[];
  execStart: UnitLine;
  /** ExecStart's executable, as written (after any of systemd's prefixes -@:+!). */
  binary: string;
  args: string[];
  env: Record<string, string>;
  killSignal: string;
  timeoutStopSec: number;
}

async function readUnit(): Promise<Unit> {
  const text = await Deno.readTextFile(UNIT_PATH);
  const entries = parseUnit(text);
  const service = entries.filter((e) => e.section === "Service");
  const execStarts = service.filter((e) => e.key === "ExecStart");
  assert.equal(execStarts.length, 1, "one ExecStart= (Type=simple)");
  const execStart = execStarts[0];
  const words = splitWords(execStart.value);
  const binary = words[0].replace(/^[-@:+!]+/, "");
  assert.ok(binary.startsWith("/"), `ExecStart's executable is an absolute path: ${binary}`);
  const env: Record<string, string> = {};
  for (const e of service.filter((e) => e.key === "Environment")) {
    for (const assignment of splitWords(e.value)) {
      const eq = assignment.indexOf("=");
      assert.ok(eq > 0, `Environment= assignment '${assignment}' is NAME=VALUE`);
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  const kill = service.filter((e) => e.key === "KillSignal").at(-1)?.value ?? "SIGTERM";
  const killSignal = kill.startsWith("SIG") ? kill : `SIG${kill}`;
  const timeout = service.filter((e) => e.key === "TimeoutStopSec").at(-1)?.value ?? "90";
  assert.match(timeout, /^\d+s?$/, "TimeoutStopSec= in plain seconds (extend the test for more)");
  return {
    text,
    entries,
    execStart,
    binary,
    args: words.slice(1),
    env,
    killSignal,
    timeoutStopSec: parseInt(timeout),
  };
}

// ---------------------------------------------------------------------------------------------

Deno.test({
  ...needs(
    "systemd-analyze",
    SYSTEMD_ANALYZE,
    "deploy: the systemd unit passes systemd-analyze verify",
  ),
  async fn() {
    const analyze = required("systemd-analyze", SYSTEMD_ANALYZE, "systemd");
    const unit = await readUnit();
    const tmp = await Deno.makeTempDir({ prefix: "ebpf-server-unit-" });
    try {
      // The unit as written, but for ExecStart's executable: a stub, since the binary is not
      // installed here and systemd-analyze checks that it exists and is executable.
      const stub = `${tmp}/ebpf-server-stub`;
      await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n");
      await Deno.chmod(stub, 0o755);
      const lines = unit.text.split("\n");
      const original = lines[unit.execStart.line];
      assert.equal(
        original.split(unit.binary).length,
        2,
        `the executable appears once on its line: ${original}`,
      );
      lines[unit.execStart.line] = original.replace(unit.binary, stub);
      const copy = `${tmp}/ebpf-server.service`;
      await Deno.writeTextFile(copy, lines.join("\n"));

      // Only that line differs from the file in the repository.
      const changed = (await Deno.readTextFile(copy)).split("\n")
        .map((l, i) => [i, l] as const)
        .filter(([i, l]) => l !== unit.text.split("\n")[i]);
      assert.deepEqual(changed.map(([i]) => i), [unit.execStart.line]);

      const out = await runCommand(analyze, ["verify", copy], { cwd: tmp, timeoutMs: 60_000 });
      const output = `${out.stdout}${out.stderr}`;
      const report = `systemd-analyze verify exit ${out.code}\n${output}\n--- unit ---\n` +
        (await Deno.readTextFile(copy));
      assert.equal(out.code, 0, report);
      // It exits 0 even for unknown keys or bad values, which it reports on lines naming the
      // unit; lines that do not (a missing bus, other units on the host) are the environment's.
      const aboutUnit = output.split("\n").filter((l) => l.includes("ebpf-server"));
      assert.deepEqual(aboutUnit, [], report);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

/** Every value of a [Service] key, in order (a key given twice is two entries). */
function serviceValues(unit: Unit, key: string): string[] {
  return unit.entries.filter((e) => e.section === "Service" && e.key === key).map((e) => e.value);
}

/** The last value of a [Service] key, as systemd keeps for single-valued keys. */
function serviceValue(unit: Unit, key: string): string | undefined {
  return serviceValues(unit, key).at(-1);
}

function isYes(value: string | undefined): boolean {
  return ["yes", "true", "on", "1"].includes((value ?? "").toLowerCase());
}

/** The words of a list-valued key over all its lines (an empty assignment resets the list). */
function serviceList(unit: Unit, key: string): string[] {
  let words: string[] = [];
  for (const value of serviceValues(unit, key)) {
    words = value === "" ? [] : [...words, ...value.split(/\s+/)];
  }
  return words;
}

/**
 * systemd's environment for a system service of a dynamic user (before Environment=), with
 * the home and Deno cache that running from source needs (the installed executable embeds its
 * modules and needs no cache).
 */
function serviceBaseEnv(home: Record<string, string>): Record<string, string> {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/",
    USER: "ebpf-server",
    LOGNAME: "ebpf-server",
    SHELL: "/usr/sbin/nologin",
    ...home,
  };
}

/** Replaces the value of --addr (as `--addr X` or `--addr=X`) and nothing else. */
function withAddr(args: string[], addr: string): string[] {
  const out = [...args];
  const at = out.findIndex((a) => a === "--addr" || a.startsWith("--addr="));
  assert.ok(at >= 0, `ExecStart has --addr: ${args.join(" ")}`);
  if (out[at] === "--addr") out[at + 1] = addr;
  else out[at] = `--addr=${addr}`;
  assert.equal(
    out.filter((a) => a === "--addr" || a.startsWith("--addr=")).length,
    1,
    "--addr given once",
  );
  return out;
}

Deno.test("deploy: the unit runs as a user of its own with only the capabilities it needs", async () => {
  const unit = await readUnit();
  assert.equal(serviceValue(unit, "User"), undefined, "no User=: DynamicUser= gives one");
  assert.ok(isYes(serviceValue(unit, "DynamicUser")), "DynamicUser=yes");
  assert.ok(isYes(serviceValue(unit, "NoNewPrivileges")), "NoNewPrivileges=yes");
  const needed = CAPABILITIES.map((c) => c.name).sort();
  for (const key of ["CapabilityBoundingSet", "AmbientCapabilities"]) {
    assert.deepEqual(serviceList(unit, key).sort(), needed, `${key}= is src/preflight.ts's set`);
  }
  // What would break it (see the comments in the unit).
  assert.ok(!isYes(serviceValue(unit, "MemoryDenyWriteExecute")), "V8's JIT needs W+X memory");
  assert.ok(!isYes(serviceValue(unit, "PrivateUsers")), "capabilities must be the host's");
  assert.ok(!isYes(serviceValue(unit, "ProtectKernelLogs")), "it would drop CAP_SYSLOG");
  assert.notEqual(serviceValue(unit, "ProcSubset"), "pid", "it would hide /proc/kallsyms");
});

Deno.test({
  ...needs(
    "systemd-analyze",
    SYSTEMD_ANALYZE,
    `deploy: systemd-analyze security rates the unit ${MAX_EXPOSURE} or lower`,
  ),
  async fn() {
    const analyze = required("systemd-analyze", SYSTEMD_ANALYZE, "systemd");
    const out = await runCommand(analyze, ["security", "--offline=yes", UNIT_PATH], {
      timeoutMs: 60_000,
    });
    const report = `systemd-analyze security exit ${out.code}\n${out.stdout}${out.stderr}`;
    const m = /Overall exposure level for ebpf-server\.service: (\d+(?:\.\d+)?) /.exec(out.stdout);
    assert.ok(m, report);
    assert.ok(Number(m[1]) <= MAX_EXPOSURE, `exposure ${m[1]} > ${MAX_EXPOSURE}\n${report}`);
  },
});

/** systemd's system call groups (`systemd-analyze syscall-filter`): group -> its entries. */
async function syscallGroups(analyze: string): Promise<Map<string, string[]>> {
  const out = await runCommand(analyze, ["syscall-filter"], { timeoutMs: 60_000 });
  assert.equal(out.code, 0, out.stderr);
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of out.stdout.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (!raw.startsWith(" ") && line.startsWith("@")) {
      current = [];
      groups.set(line, current);
    } else {
      current?.push(line);
    }
  }
  assert.ok(groups.has("@system-service"), "systemd-analyze syscall-filter lists @system-service");
  return groups;
}

/** The system calls a SystemCallFilter= allow list (with ~ removals) lets through. */
function allowedSyscalls(lines: string[], groups: Map<string, string[]>): Set<string> {
  const expand = (name: string, into: Set<string>, seen = new Set<string>()) => {
    if (!name.startsWith("@")) return void into.add(name);
    if (seen.has(name)) return;
    seen.add(name);
    const members = groups.get(name);
    assert.ok(members, `unknown system call group ${name}`);
    for (const m of members) expand(m, into, seen);
  };
  assert.ok(
    lines.length > 0 && !lines[0].startsWith("~"),
    "SystemCallFilter= starts as an allow list",
  );
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith("~");
    const names = new Set<string>();
    for (const word of line.replace(/^~/, "").split(/\s+/).filter(Boolean)) {
      expand(word.replace(/:.*$/, ""), names);
    }
    for (const n of names) deny ? allowed.delete(n) : allowed.add(n);
  }
  return allowed;
}

/** System calls and socket families a traced process used after it executed `binary`. */
function tracedUse(log: string, binary: string): { syscalls: Set<string>; families: Set<string> } {
  const syscalls = new Set<string>();
  const families = new Set<string>();
  const lines = log.split("\n");
  const exec = lines.findIndex((l) => l.includes(`execve("${binary}"`));
  assert.ok(exec >= 0, `strace saw the exec of ${binary}`);
  for (const line of lines.slice(exec + 1)) {
    const m = /^\d+\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()/.exec(line);
    if (!m) continue;
    syscalls.add(m[1] ?? m[2]);
    const family = /^\d+\s+socket(?:pair)?\((AF_\w+)/.exec(line);
    if (family) families.add(family[1]);
  }
  return { syscalls, families };
}

/**
 * The pid of the process strace started (setpriv, which becomes the server): the pid of the
 * trace's first line, its execve. (Not strace's first child: it forks short-lived ones of its
 * own to probe ptrace features first.)
 */
function tracedPid(traceLog: string): Promise<number> {
  return waitFor("strace to start the server", () => {
    let text = "";
    try {
      text = Deno.readTextFileSync(traceLog);
    } catch {
      return undefined;
    }
    return firstTracedPid(text);
  }, { timeoutMs: 10_000 });
}

/** The pid on the first line of a trace, if it is the execve (strace pads pids with spaces). */
function firstTracedPid(trace: string): number | undefined {
  const m = /^(\d+)\s+execve\(/.exec(trace);
  return m ? Number(m[1]) : undefined;
}

Deno.test({
  name: privileged(
    "deploy: the unit's ExecStart, Environment=, user, capabilities and system call filter start the server; KillSignal stops it with 0",
  ),
  ignore: !canRunPrivileged,
  async fn() {
    const unit = await readUnit();
    assert.ok(isYes(serviceValue(unit, "DynamicUser")), "DynamicUser=yes (else extend the test)");
    const capabilities = serviceList(unit, "AmbientCapabilities");
    assert.deepEqual(serviceList(unit, "CapabilityBoundingSet").sort(), [...capabilities].sort());
    // A dynamic user is a uid with no account: so is the tests' uid.
    const uid = testUid();
    const strace = STRACE ?? (inCI ? required("strace", STRACE, "strace") : undefined);
    let lastStderr = "";
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = freePort();
      const args = withAddr(unit.args, `127.0.0.1:${port}`);
      assert.deepEqual(
        args.filter((_, i) => args[i] !== unit.args[i]),
        [`127.0.0.1:${port}`],
        "only the address differs from the unit's arguments",
      );
      const launch = await mainCommand(args, { asUser: true, uid, capabilities });
      const tmp = await Deno.makeTempDir({ prefix: "ebpf-server-strace-" });
      const traceLog = `${tmp}/trace`;
      // Under strace (-f: every thread) when it is there, to check the system call filter.
      const [command, commandArgs] = strace
        ? [strace, ["-f", "-qq", "-o", traceLog, launch.command, ...launch.args]]
        : [launch.command, launch.args];
      const proc = spawnCollecting(command, {
        args: commandArgs,
        cwd: launch.cwd,
        clearEnv: true,
        env: { ...serviceBaseEnv(launch.env), ...unit.env },
      });
      let serverPid = proc.child.pid;
      // systemd sends SIGKILL after TimeoutStopSec; so does this test (then the exit is not 0).
      const kill = (signal: Deno.Signal) => {
        try {
          Deno.kill(serverPid, signal);
        } catch {
          // it exited
        }
      };
      const stop = async (signal: Deno.Signal) => {
        kill(signal);
        await waitFor("the server to exit", () => proc.exit(), {
          timeoutMs: unit.timeoutStopSec * 1000,
          intervalMs: 50,
        }).catch(() => kill("SIGKILL"));
        return await proc.stop("SIGKILL", 5000);
      };
      try {
        if (strace) serverPid = await tracedPid(traceLog);
        const url = `http://127.0.0.1:${port}`;
        const health = await waitFor("/health of the server started as the unit says", async () => {
          const exit = proc.exit();
          if (exit) throw new GiveUp(`the server exited with ${exit.code}`);
          const res = await fetch(`${url}/health`).catch(() => undefined);
          if (!res) return undefined;
          const body = await res.json();
          assert.equal(res.status, 200, JSON.stringify(body));
          return body as { status: string; programs: { name: string; state: string }[] };
        }, { timeoutMs: 60_000, intervalMs: 100 });
        assert.ok(health.programs.length > 0, "/health lists the programs");
        assert.deepEqual(
          health.programs.filter((p) => p.state !== "running"),
          [],
          "every program runs with the unit's capabilities",
        );
        assertCredentials(serverPid, launch.expect!);
        // The unit's settings reached the server: --store-capacity from ExecStart.
        const capacityArg = args[args.indexOf("--store-capacity") + 1];
        if (args.includes("--store-capacity")) {
          const metrics = await (await fetch(`${url}/metrics`)).text();
          assert.match(metrics, new RegExp(`^ebpf_server_store_capacity ${capacityArg}$`, "m"));
        }
        // Some of everything it does, for the system call check: queries, the iterator,
        // docs, a stop and a start.
        for (
          const path of [
            "/api/events?limit=10",
            "/api/programs/connection/summary",
            "/api/programs/packet_drop/summary",
            "/api/programs/tcp_life/summary",
            "/api/programs/tcp_life/open",
            "/api/drop-reasons",
            "/openapi.json",
            "/docs",
          ]
        ) {
          const res = await fetch(url + path);
          await res.body?.cancel();
          assert.equal(res.status, 200, path);
        }
        for (const action of ["stop", "start"]) {
          const res = await fetch(`${url}/api/programs/tcp_life/${action}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
          });
          assert.equal(res.status, 200, `${action}: ${await res.text()}`);
        }
        const s = await stop(unit.killSignal as Deno.Signal);
        assert.equal(
          s.signal,
          null,
          `exited by itself, not by a signal; stderr:\n${proc.stderr()}`,
        );
        assert.equal(s.code, 0, `exit code on ${unit.killSignal}; stderr:\n${proc.stderr()}`);
        // LOG_LEVEL from Environment= took effect: info lines are logged.
        if (unit.env.LOG_LEVEL === "info") {
          assert.match(proc.stderr(), /listening/, "info-level log lines appear");
        }
        if (strace) {
          const analyze = required("systemd-analyze", SYSTEMD_ANALYZE, "systemd");
          const allowed = allowedSyscalls(
            serviceValues(unit, "SystemCallFilter"),
            await syscallGroups(analyze),
          );
          const used = tracedUse(await Deno.readTextFile(traceLog), launch.server);
          assert.ok(used.syscalls.has("bpf") && used.syscalls.has("epoll_wait"), "traced");
          assert.deepEqual(
            [...used.syscalls].filter((c) => !allowed.has(c)).sort(),
            [],
            "system calls the server made that the unit's SystemCallFilter= refuses",
          );
          const families = new Set(serviceList(unit, "RestrictAddressFamilies"));
          assert.deepEqual(
            [...used.families].filter((f) => !families.has(f)).sort(),
            [],
            "socket families the server used that RestrictAddressFamilies= refuses",
          );
        }
        return;
      } catch (err) {
        if (strace && serverPid === proc.child.pid) {
          // strace may have started it after all: kill the server, not strace, or it would be
          // left running (and holding the stderr pipe this test reads to its end)
          serverPid = firstTracedPid(await Deno.readTextFile(traceLog).catch(() => "")) ??
            serverPid;
        }
        await stop("SIGKILL");
        lastStderr = proc.stderr();
        if (lastStderr.includes("already in use")) continue;
        throw new Error(`${(err as Error).message}\n--- server stderr ---\n${lastStderr}`);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    }
    throw new Error(`no free port after 5 attempts\n--- server stderr ---\n${lastStderr}`);
  },
});

Deno.test({
  ...needs("promtool", PROMTOOL, "deploy: prometheus.yml passes promtool check config"),
  async fn() {
    const promtool = required("promtool", PROMTOOL, "prometheus");
    const out = await runCommand(promtool, ["check", "config", PROMETHEUS_YML]);
    const report = `promtool exit ${out.code}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`;
    assert.equal(out.code, 0, report);
    assert.match(out.stdout, /SUCCESS/, report);
    assert.doesNotMatch(out.stdout + out.stderr, /WARNING|FAILED/i, report);
  },
});

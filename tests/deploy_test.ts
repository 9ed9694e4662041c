/**
 * The files in deploy/ used as written: the systemd unit passes `systemd-analyze verify`, its
 * ExecStart arguments and Environment= start the real server which stops with exit 0 on the
 * unit's KillSignal, and the Prometheus scrape config passes `promtool check config`.
 *
 * systemd-analyze and promtool are needed: when `CI` is set a missing one fails the test (CI
 * installs Debian's `systemd` and `prometheus` packages); locally the test is ignored and its
 * name says why.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canRunPrivileged,
  freePort,
  GiveUp,
  inCI,
  MAIN_TS,
  privileged,
  ROOT_DIR,
  runCommand,
  spawnCollecting,
  waitFor,
  which,
} from "./_server.ts";

const UNIT_PATH = `${ROOT_DIR}deploy/ebpf-server.service`;
const PROMETHEUS_YML = `${ROOT_DIR}deploy/prometheus.yml`;

const SYSTEMD_ANALYZE = which("systemd-analyze");
const PROMTOOL = which("promtool");

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

/** systemd's environment for a system service with User=root (before Environment=). */
function serviceBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    USER: "root",
    LOGNAME: "root",
    SHELL: "/bin/sh",
  };
  // Where this test machine's deno keeps its module cache (the installed binary embeds its
  // modules and does not need one).
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) env.DENO_DIR = denoDir;
  return env;
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

Deno.test({
  name: privileged(
    "deploy: the unit's ExecStart and Environment= start the server; KillSignal stops it with 0",
  ),
  ignore: !canRunPrivileged,
  async fn() {
    const unit = await readUnit();
    const user = unit.entries.find((e) => e.section === "Service" && e.key === "User")?.value;
    assert.equal(user, "root", "the unit runs as root, as this test does");
    let lastStderr = "";
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = freePort();
      const args = withAddr(unit.args, `127.0.0.1:${port}`);
      assert.deepEqual(
        args.filter((_, i) => args[i] !== unit.args[i]),
        [`127.0.0.1:${port}`],
        "only the address differs from the unit's arguments",
      );
      const proc = spawnCollecting(Deno.execPath(), {
        args: ["run", "--allow-all", MAIN_TS, ...args],
        cwd: "/",
        clearEnv: true,
        env: { ...serviceBaseEnv(), ...unit.env },
      });
      // systemd sends SIGKILL after TimeoutStopSec; so does this test (then the exit is not 0).
      const stop = (signal: Deno.Signal) => proc.stop(signal, unit.timeoutStopSec * 1000);
      try {
        const url = `http://127.0.0.1:${port}`;
        const health = await waitFor("/health of the server started as the unit says", async () => {
          const exit = proc.exit();
          if (exit) throw new GiveUp(`the server exited with ${exit.code}`);
          const res = await fetch(`${url}/health`).catch(() => undefined);
          if (!res) return undefined;
          const body = await res.json();
          assert.equal(res.status, 200, JSON.stringify(body));
          return body as { status: string; programs: { name: string; state: string }[] };
        }, { timeoutMs: 30_000, intervalMs: 100 });
        assert.ok(health.programs.length > 0, "/health lists the programs");
        // The unit's settings reached the server: --store-capacity from ExecStart.
        const capacityArg = args[args.indexOf("--store-capacity") + 1];
        if (args.includes("--store-capacity")) {
          const metrics = await (await fetch(`${url}/metrics`)).text();
          assert.match(metrics, new RegExp(`^ebpf_server_store_capacity ${capacityArg}$`, "m"));
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
        return;
      } catch (err) {
        await stop("SIGKILL");
        lastStderr = proc.stderr();
        if (lastStderr.includes("already in use")) continue;
        throw new Error(`${(err as Error).message}\n--- server stderr ---\n${lastStderr}`);
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

/**
 * Test helpers: the real server as a subprocess, polling, the kernel's list of BPF programs and
 * short-lived Python children that make connect() calls with a known pid.
 *
 * Privileged tests (root, real BPF) use {@linkcode canRunPrivileged}: they run as root, are
 * ignored when not root and `CI` is unset, and always run (and fail without BPF) when `CI` is set.
 *
 * @module
 */

/** The repository root (tests run from any working directory). */
export const ROOT_DIR = decodeURIComponent(new URL("../", import.meta.url).pathname);
/** The server's entry point. */
export const MAIN_TS = decodeURIComponent(new URL("../src/main.ts", import.meta.url).pathname);

/** Whether this test process runs as root. */
export const isRoot = Deno.uid() === 0;
/** Whether `CI` is set: then privileged tests always run, and fail when BPF cannot load. */
export const inCI = (Deno.env.get("CI") ?? "") !== "";
/** Whether tests that load real BPF programs (and need root) run. */
export const canRunPrivileged = isRoot || inCI;

/** The name of a test that needs root and BPF; says so when it is ignored. */
export function privileged(name: string): string {
  return canRunPrivileged ? `[privileged] ${name}` : `[privileged: ignored, needs root] ${name}`;
}

const decoder = new TextDecoder();

/** Thrown inside a {@linkcode waitFor} callback to stop waiting at once (waiting cannot help). */
export class GiveUp extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GiveUp";
  }
}

/**
 * Polls `fn` until it returns something other than `undefined`; throws after `timeoutMs` (other
 * errors are retried until then, a {@linkcode GiveUp} at once).
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? "" : ` (last error: ${lastError})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bound and closed again). */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Collects a child's piped stream into text. */
class StreamText {
  #chunks: string[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream) this.#chunks.push(decoder.decode(chunk, { stream: true }));
    })().catch(() => {});
  }

  get text(): string {
    return this.#chunks.join("");
  }
}

/** A child process whose stderr is collected as text. */
export interface Collected {
  readonly child: Deno.ChildProcess;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** Its exit status once it has exited. */
  exit(): Deno.CommandStatus | undefined;
  /**
   * Sends `signal` (default SIGTERM) unless it has exited, then SIGKILL after `killAfterMs`
   * (a child that ignores the signal must not hang the suite); resolves with its exit status
   * once its stderr is read to the end. Calling it again returns the same promise.
   */
  stop(signal?: Deno.Signal, killAfterMs?: number): Promise<Deno.CommandStatus>;
}

/** Spawns `command` with stdin and stdout closed and stderr collected. */
export function spawnCollecting(
  command: string,
  options: Omit<Deno.CommandOptions, "stdin" | "stdout" | "stderr">,
): Collected {
  const child = new Deno.Command(command, {
    ...options,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new StreamText(child.stderr);
  let exit: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => exit = s);
  let stopping: Promise<Deno.CommandStatus> | undefined;
  return {
    child,
    stderr: () => stderr.text,
    exit: () => exit,
    stop(signal = "SIGTERM", killAfterMs = 15_000) {
      stopping ??= (async () => {
        if (!exit) {
          try {
            child.kill(signal);
          } catch {
            // it exited meanwhile
          }
        }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // it exited meanwhile
          }
        }, killAfterMs);
        try {
          const s = await status;
          await stderr.done;
          return s;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}

/**
 * The init of a control request (POST start/stop): every POST needs
 * `Content-Type: application/json`, so that no web page can send one (issue 13).
 */
export const CONTROL: RequestInit = {
  method: "POST",
  headers: { "content-type": "application/json" },
};

/** A running server started by {@linkcode startServer}. */
export interface ServerHandle extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** Whether it has exited. */
  exited(): boolean;
  /** GETs a path, checks the status (200 unless given) and returns the JSON body. */
  json<T = Record<string, unknown>>(
    path: string,
    init?: RequestInit & { status?: number },
  ): Promise<T>;
  /** Sends SIGTERM (once) and waits for the exit; returns the exit code. */
  stop(): Promise<number>;
}

/** What {@linkcode startServer} accepts. */
export interface StartOptions {
  /** More flags after `--addr`. */
  args?: string[];
  /** More environment variables. */
  env?: Record<string, string>;
  /** How long to wait for /health to show every program running (default 20 s). */
  timeoutMs?: number;
  /** Runs the server under `ulimit -n` of this many open files. */
  openFiles?: number;
  /** TLS: the server's URLs are https, checked against this CA (PEM). */
  caCert?: string;
  /** Headers every request of the handle sends (credentials). */
  headers?: Record<string, string>;
  /** A client certificate (PEM) the handle's requests present. */
  clientCert?: { cert: string; key: string };
}

interface Health {
  status: string;
  programs: { name: string; state: string; error: string | null }[];
}

/**
 * Starts `deno run --allow-all src/main.ts --addr 127.0.0.1:<free port>` and waits until
 * `GET /health` answers with every program running.
 *
 * @example
 * ```ts
 * await using server = await startServer();
 * const health = await server.json("/health");
 * ```
 */
export async function startServer(options: StartOptions = {}): Promise<ServerHandle> {
  let lastStderr = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freePort();
    const handle = spawnServer(port, options);
    try {
      await waitUntilReady(handle, options.timeoutMs ?? 20_000);
      return handle;
    } catch (err) {
      await handle.stop();
      lastStderr = handle.stderr();
      // Another process took the port between our probe and the server's bind: try another.
      if (lastStderr.includes("already in use")) continue;
      throw new Error(`${(err as Error).message}\n--- server stderr ---\n${lastStderr}`);
    }
  }
  throw new Error(`no free port after 5 attempts\n--- server stderr ---\n${lastStderr}`);
}

function spawnServer(port: number, options: StartOptions): ServerHandle {
  const args = [
    "run",
    "--allow-all",
    MAIN_TS,
    "--addr",
    `127.0.0.1:${port}`,
    ...(options.args ?? []),
  ];
  // `exec` keeps the pid: it is the server's
  const proc = options.openFiles === undefined
    ? spawnCollecting(Deno.execPath(), {
      args,
      cwd: ROOT_DIR,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...options.env },
    })
    : spawnCollecting("sh", {
      args: ["-c", `ulimit -n ${options.openFiles} && exec "$0" "$@"`, Deno.execPath(), ...args],
      cwd: ROOT_DIR,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...options.env },
    });
  const child = proc.child;
  const url = `${options.caCert ? "https" : "http"}://127.0.0.1:${port}`;
  let client = options.caCert
    ? Deno.createHttpClient({ caCerts: [options.caCert], ...options.clientCert })
    : undefined;
  const closeClient = () => {
    client?.close();
    client = undefined;
  };
  // A server that ignores SIGTERM is killed after 15 s; the caller's assertion on the exit code
  // (0) then fails.
  const stop = async () => (await proc.stop()).code;

  return {
    url,
    port,
    pid: child.pid,
    child,
    stderr: proc.stderr,
    exited: () => proc.exit() !== undefined,
    async json<T>(path: string, init: RequestInit & { status?: number } = {}): Promise<T> {
      const { status: expected = 200, ...rest } = init;
      const headers = new Headers(rest.headers);
      for (const [k, v] of Object.entries(options.headers ?? {})) {
        if (!headers.has(k)) headers.set(k, v);
      }
      const res = await fetch(url + path, { ...rest, headers, ...(client ? { client } : {}) });
      const text = await res.text();
      if (res.status !== expected) {
        throw new Error(`${rest.method ?? "GET"} ${path}: status ${res.status}, body ${text}`);
      }
      return JSON.parse(text) as T;
    },
    stop: async () => {
      const code = await stop();
      closeClient();
      return code;
    },
    [Symbol.asyncDispose]: async () => {
      await stop();
      closeClient();
    },
  };
}

async function waitUntilReady(handle: ServerHandle, timeoutMs: number): Promise<void> {
  await waitFor("the server's /health to show every program running", async () => {
    if (handle.exited()) {
      throw new GiveUp("the server exited before it was ready");
    }
    let health: Health;
    try {
      health = await handle.json<Health>("/health");
    } catch {
      return undefined; // not listening yet
    }
    const failed = health.programs.filter((p) => p.state === "failed");
    if (failed.length) {
      throw new GiveUp(
        `programs failed: ${failed.map((p) => `${p.name}: ${p.error}`).join("; ")}`,
      );
    }
    return health.programs.length > 0 && health.programs.every((p) => p.state === "running")
      ? true
      : undefined;
  }, { timeoutMs, intervalMs: 50 });
}

/**
 * Runs a command to its end (killed with SIGTERM after `timeoutMs`), with `stdin` as its input
 * when given; returns code and output.
 */
export async function runCommand(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT_DIR,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGTERM");
    } catch {
      // it exited meanwhile
    }
  }, options.timeoutMs ?? 60_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const out = await child.output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && (info.mode ?? 0) & 0o111) return `${dir}/${name}`;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** Runs `deno run --allow-all src/main.ts ...args` to its end. */
export function runMain(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(Deno.execPath(), ["run", "--allow-all", MAIN_TS, ...args], options);
}

/** A BPF program loaded in the kernel, as `bpftool prog list -j` shows it. */
export interface LoadedProgram {
  id: number;
  name: string;
  type: string;
}

/** Every BPF program loaded in the kernel (`bpftool prog list -j`). */
export async function loadedPrograms(): Promise<LoadedProgram[]> {
  const out = await runCommand("bpftool", ["prog", "list", "-j"], { timeoutMs: 30_000 });
  if (out.code !== 0) throw new Error(`bpftool prog list failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as LoadedProgram[];
}

/** Kernel names (truncated to 15 characters) of the connection program's BPF programs. */
export const CONNECTION_PROG_NAMES = ["connection_ente", "connection_exit"];

/** Whether a kernel program name is one of the connection program's. */
export function isConnectionProg(name: string | undefined): boolean {
  return CONNECTION_PROG_NAMES.some((prefix) => (name ?? "").startsWith(prefix));
}

/**
 * Ids of the BPF programs a process holds open (its fds' `prog_id:` in /proc/PID/fdinfo). This
 * tells our server's programs from those of any other instance running on the host.
 */
export function programIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/fdinfo`)];
  } catch {
    return ids; // exited
  }
  for (const entry of entries) {
    let info: string;
    try {
      info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${entry.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^prog_id:\s*(\d+)$/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return ids;
}

/** The connection programs (kernel id and name) loaded by process `pid`. */
export async function connectionProgramsOf(pid: number): Promise<LoadedProgram[]> {
  const ids = programIdsOf(pid);
  return (await loadedPrograms()).filter((p) => ids.has(p.id) && isConnectionProg(p.name));
}

/**
 * The `const volatile` settings a loaded BPF program was given (its `.rodata` map, read with
 * `bpftool map dump`, formatted by the map's BTF), e.g. `{ self_tgid: 1234 }`.
 */
export async function rodataOf(progId: number): Promise<Record<string, unknown>> {
  const prog = await bpftoolJson<{ map_ids?: number[] }>(["prog", "show", "id", String(progId)]);
  const settings: Record<string, unknown> = {};
  for (const mapId of prog.map_ids ?? []) {
    const map = await bpftoolJson<{ name?: string }>(["map", "show", "id", String(mapId)]);
    if (!map.name?.endsWith(".rodata")) continue;
    const dump = await bpftoolJson<{ formatted?: { value?: Record<string, unknown> } }[]>([
      "map",
      "dump",
      "id",
      String(mapId),
    ]);
    for (const entry of dump) {
      for (const section of Object.values(entry.formatted?.value ?? {})) {
        if (Array.isArray(section)) { for (const item of section) Object.assign(settings, item); }
      }
    }
  }
  return settings;
}

async function bpftoolJson<T>(args: string[]): Promise<T> {
  const out = await runCommand("bpftool", [...args, "-j"], { timeoutMs: 30_000 });
  if (out.code !== 0) throw new Error(`bpftool ${args.join(" ")} failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

/** One connect() a Python child makes. */
export type PyAction =
  | { op: "tcp"; host: string; port: number; family?: 4 | 6; blocking?: boolean }
  | { op: "udp"; host: string; port: number; family?: 4 | 6 }
  | { op: "unix"; path: string };

/** What a Python child reports: its pid, its comm and each connect()'s errno (0 on success). */
export interface PyResult {
  pid: number;
  comm: string;
  errnos: number[];
}

const PY_SCRIPT = `
import json, os, socket, sys
actions = json.loads(sys.argv[1])
errnos = []
socks = []
for a in actions:
    if a["op"] == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = a["path"]
    else:
        fam = socket.AF_INET6 if a.get("family") == 6 else socket.AF_INET
        kind = socket.SOCK_DGRAM if a["op"] == "udp" else socket.SOCK_STREAM
        s = socket.socket(fam, kind)
        addr = (a["host"], a["port"])
    if a.get("blocking", True) is False:
        s.setblocking(False)
    errnos.append(s.connect_ex(addr))
    socks.append(s)
for s in socks:
    s.close()
with open("/proc/self/comm") as f:
    comm = f.read().strip()
print(json.dumps({"pid": os.getpid(), "comm": comm, "errnos": errnos}))
`;

let pythonPath: string | undefined;

/**
 * The real Python executable (not a pyenv shim script), so the child's pid and comm are those of
 * Python from its first instruction.
 */
async function python(): Promise<string> {
  if (pythonPath) return pythonPath;
  const out = await runCommand("python3", ["-c", "import sys; print(sys.executable)"]);
  if (out.code !== 0) throw new Error(`python3 does not run: ${out.stderr}`);
  return pythonPath = out.stdout.trim();
}

/**
 * Runs a Python child that makes the given connect() calls, in order, each on a new socket
 * (loopback and unix sockets only), and returns its pid, comm and errnos.
 */
export async function pythonConnects(actions: PyAction[]): Promise<PyResult> {
  if (actions.length > 100) throw new RangeError("at most 100 actions per child");
  const out = await runCommand(await python(), ["-S", "-c", PY_SCRIPT, JSON.stringify(actions)], {
    timeoutMs: 30_000,
  });
  if (out.code !== 0) throw new Error(`python child failed (${out.code}): ${out.stderr}`);
  return JSON.parse(out.stdout) as PyResult;
}

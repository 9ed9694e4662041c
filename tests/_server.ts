/**
 * Test helpers: the real server as a subprocess, polling, the kernel's list of BPF programs and
 * short-lived Python children that make connect() calls with a known pid.
 *
 * Privileged tests (root, real BPF) use {@linkcode canRunPrivileged}: they run as root, are
 * ignored when not root and `CI` is unset, and always run (and fail without BPF) when `CI` is set.
 *
 * With `EBPF_TEST_AS_USER=1` ({@linkcode asUser}, `make test-as-user`) every server these helpers
 * start runs as {@linkcode testUid}, a uid with no account (as systemd's `DynamicUser=` gives),
 * with only the capabilities of `src/preflight.ts` (setpriv, ambient capabilities), from a copy
 * of the tree that any user can read ({@linkcode runTree}): the checkout may sit in a 0700 home.
 * The test process itself stays root (it makes namespaces, nftables rules, reads bpftool).
 *
 * @module
 */

import { CAPABILITIES, setprivCaps } from "../src/preflight.ts";

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

/**
 * Every wait and command timeout of the tests is multiplied by `EBPF_TEST_TIMEOUT_SCALE`
 * (default 1): the kernel matrix runs the same tests in qemu without KVM, several times slower.
 */
export const TIMEOUT_SCALE = timeoutScale(Deno.env.get("EBPF_TEST_TIMEOUT_SCALE"));

function timeoutScale(text: string | undefined): number {
  if (text === undefined || text === "") return 1;
  const scale = Number(text);
  if (!Number.isFinite(scale) || scale < 1 || scale > 100) {
    throw new RangeError(`EBPF_TEST_TIMEOUT_SCALE must be a number from 1 to 100, not '${text}'`);
  }
  return scale;
}

/** Whether servers run as a non-root uid with only the needed capabilities (see the module doc). */
export const asUser = (Deno.env.get("EBPF_TEST_AS_USER") ?? "") === "1";

/** The name of a test that needs root and BPF; says so when it is ignored. */
export function privileged(name: string): string {
  if (!canRunPrivileged) return `[privileged: ignored, needs root] ${name}`;
  return asUser ? `[privileged, server as uid ${testUid()}] ${name}` : `[privileged] ${name}`;
}

/** Ids named in /etc/passwd and /etc/group (the accounts of this host). */
function namedIds(): Set<number> {
  const ids = new Set<number>();
  for (const file of ["/etc/passwd", "/etc/group"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const id = Number(line.split(":")[2]);
      if (line && Number.isInteger(id)) ids.add(id);
    }
  }
  return ids;
}

let chosenUid: number | undefined;

/**
 * The uid (and gid) non-root servers run as: the first id of systemd's range for dynamic users
 * (61184-65519) that no account or group of this host has, so it owns nothing on the host, like
 * the unit's `DynamicUser=yes`. `EBPF_TEST_UID` overrides it.
 */
export function testUid(): number {
  if (chosenUid !== undefined) return chosenUid;
  const given = Deno.env.get("EBPF_TEST_UID");
  if (given) return chosenUid = Number(given);
  const taken = namedIds();
  for (let id = 61184; id <= 65519; id++) {
    if (!taken.has(id)) return chosenUid = id;
  }
  throw new Error("no free uid in 61184-65519; set EBPF_TEST_UID");
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
  const timeoutMs = (options.timeoutMs ?? 10_000) * TIMEOUT_SCALE;
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
  /** How the address flag is spelled (default `--addr`; the original project's binary: `-addr`). */
  addrFlag?: string;
  /** More environment variables. */
  env?: Record<string, string>;
  /** How long to wait for /health to show every program running (default 20 s). */
  timeoutMs?: number;
  /** Run it as a non-root uid so (default: as {@linkcode asUser} says, with every capability). */
  user?: MainCommandOptions;
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
    const launch = await mainCommand(
      [options.addrFlag ?? "--addr", `127.0.0.1:${port}`, ...(options.args ?? [])],
      options.user ? { asUser: true, ...options.user } : { asUser },
    );
    const handle = spawnServer(port, launch, options);
    try {
      await waitUntilReady(handle, options.timeoutMs ?? 20_000);
      if (launch.expect) assertCredentials(handle.pid, launch.expect);
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

function spawnServer(port: number, launch: Launch, options: StartOptions): ServerHandle {
  const env = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...launch.env, ...options.env };
  // `exec` keeps the pid: it is the server's (or setpriv's, which execs the server in turn)
  const proc = options.openFiles === undefined
    ? spawnCollecting(launch.command, { args: launch.args, cwd: launch.cwd, env })
    : spawnCollecting("sh", {
      args: [
        "-c",
        `ulimit -n ${options.openFiles} && exec "$0" "$@"`,
        launch.command,
        ...launch.args,
      ],
      cwd: launch.cwd,
      env,
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
  }, (options.timeoutMs ?? 60_000) * TIMEOUT_SCALE);
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

/**
 * Runs `deno run --allow-all src/main.ts ...args` to its end (as {@linkcode testUid} with the
 * needed capabilities when {@linkcode asUser}).
 */
export async function runMain(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const launch = await mainCommand(args, { asUser });
  return runCommand(launch.command, launch.args, {
    ...options,
    cwd: launch.cwd,
    env: { ...launch.env, ...options.env },
  });
}

/** A command line that runs the server, and where and with what environment. */
export interface Launch {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The executable that becomes the server (deno; `command` may be setpriv in front of it). */
  server: string;
  /** The uid and effective capabilities the server must have (when run as a user). */
  expect?: { uid: number; capabilities: readonly string[] };
}

/**
 * Asserts that process `pid` runs as `uid` (real, effective, saved and filesystem) with exactly
 * the given effective, permitted and bounding capabilities, from /proc/PID/status.
 */
export function assertCredentials(
  pid: number,
  expect: { uid: number; capabilities: readonly string[] },
): void {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "";
  const ids = field("Uid").split(/\s+/).map(Number);
  if (ids.length !== 4 || ids.some((id) => id !== expect.uid)) {
    throw new Error(`server ${pid} runs as uids ${ids.join(" ")}, not ${expect.uid}`);
  }
  let mask = 0n;
  for (const name of expect.capabilities) {
    mask |= 1n << BigInt(CAPABILITIES.find((c) => c.name === name)!.bit);
  }
  for (const set of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) {
    const got = BigInt("0x" + field(set));
    if (got !== mask) {
      throw new Error(`server ${pid}: ${set} is ${got.toString(16)}, not ${mask.toString(16)}`);
    }
  }
  if (field("NoNewPrivs") !== "1") throw new Error(`server ${pid}: NoNewPrivs is not set`);
}

/** What {@linkcode mainCommand} accepts. */
export interface MainCommandOptions {
  /** Run as a non-root uid through setpriv, from {@linkcode runTree} (default false). */
  asUser?: boolean;
  /** The uid and gid (default {@linkcode testUid}). */
  uid?: number;
  /**
   * Capabilities it keeps, as capabilities(7) names them (default: every one of
   * `src/preflight.ts`); ambient, inheritable and the whole bounding set.
   */
  capabilities?: readonly string[];
}

/**
 * How to run `deno run --allow-all src/main.ts ...args`: from the checkout as this process, or
 * (`asUser`) through `setpriv` as a uid with no account, only the given capabilities and
 * no_new_privs (as the systemd unit runs it), from a copy of the tree any user can read, with a
 * Deno cache of its own and `--cached-only` (the packages come from the copied node_modules).
 */
export async function mainCommand(
  args: string[],
  options: MainCommandOptions = {},
): Promise<Launch> {
  if (!options.asUser) {
    return {
      command: Deno.execPath(),
      args: ["run", "--allow-all", MAIN_TS, ...args],
      cwd: ROOT_DIR,
      env: {},
      server: Deno.execPath(),
    };
  }
  const uid = options.uid ?? testUid();
  const tree = await runTree();
  const home = await userHome(tree, uid);
  const names = options.capabilities ?? CAPABILITIES.map((c) => c.name);
  const caps = setprivCaps(names.map((name) => {
    const cap = CAPABILITIES.find((c) => c.name === name);
    if (!cap) throw new RangeError(`${name} is not a capability of src/preflight.ts`);
    return cap;
  }));
  const keep = caps === "" ? "-all" : `-all,${caps}`;
  return {
    command: "setpriv",
    args: [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      "--clear-groups",
      `--inh-caps=${keep}`,
      `--ambient-caps=${keep}`,
      `--bounding-set=${keep}`,
      "--no-new-privs",
      tree.deno,
      "run",
      "--allow-all",
      "--cached-only",
      `${tree.dir}/src/main.ts`,
      ...args,
    ],
    cwd: tree.dir,
    env: { HOME: home, DENO_DIR: `${home}/deno` },
    server: tree.deno,
    expect: { uid, capabilities: names },
  };
}

/** A copy of what running the server from source needs. */
export interface RunTree {
  /** The copy's root (`src/`, `build/`, `node_modules/`, `deno.json`, `deno.lock`). */
  dir: string;
  /** A deno executable any user can run: this one, or a copy in the tree. */
  deno: string;
}

let tree: Promise<RunTree> | undefined;

/** Whether every directory above `path` lets others search it and `path` lets them read `bits`. */
function othersMay(path: string, bits: number): boolean {
  const parts = path.split("/").filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const at = "/" + parts.slice(0, i + 1).join("/");
    const mode = Deno.statSync(at).mode ?? 0;
    const want = i === parts.length - 1 ? bits : 0o001;
    if ((mode & want) !== want) return false;
  }
  return true;
}

/**
 * A copy of the checkout's `src/`, `build/bpf/`, `build/libebpf_shim.so`, `node_modules/`,
 * `deno.json` and `deno.lock` in a new directory under the temporary directory, readable by
 * every user (the checkout itself may be in a 0700 home, as /root/proj), made once per test
 * process and removed when it exits. About 30 MB; the checkout is not touched.
 */
export function runTree(): Promise<RunTree> {
  tree ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ebpf-server-tree-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    });
    await Deno.mkdir(`${dir}/build`);
    const copies: [string, string][] = [
      ["src", "src"],
      ["node_modules", "node_modules"],
      ["deno.json", "deno.json"],
      ["deno.lock", "deno.lock"],
      ["build/bpf", "build/bpf"],
      ["build/libebpf_shim.so", "build/libebpf_shim.so"],
    ];
    for (const [from, to] of copies) {
      const out = await runCommand("cp", ["-R", `${ROOT_DIR}${from}`, `${dir}/${to}`]);
      if (out.code !== 0) throw new Error(`cp ${from} failed: ${out.stderr}`);
    }
    let deno = Deno.realPathSync(Deno.execPath());
    if (!othersMay(deno, 0o005)) {
      await Deno.mkdir(`${dir}/bin`);
      await Deno.copyFile(deno, `${dir}/bin/deno`);
      deno = `${dir}/bin/deno`;
    }
    const out = await runCommand("chmod", ["-R", "a+rX", dir]);
    if (out.code !== 0) throw new Error(`chmod failed: ${out.stderr}`);
    return { dir, deno };
  })();
  return tree;
}

const homes = new Map<number, Promise<string>>();

/** A home and Deno cache directory in the tree that only `uid` may use. */
function userHome(tree: RunTree, uid: number): Promise<string> {
  let home = homes.get(uid);
  if (!home) {
    home = (async () => {
      const path = `${tree.dir}/home-${uid}`;
      await Deno.mkdir(path, { mode: 0o700 });
      await Deno.chown(path, uid, uid);
      return path;
    })();
    homes.set(uid, home);
  }
  return home;
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

/**
 * Whether this kernel's skb:kfree_skb gives a reason: its format file has the field (read here
 * without BTF). Where it does not (before 5.17), every drop's reason is null and summaries count
 * it as `unknown`.
 */
/**
 * `kernel.perf_event_paranoid` of the running kernel: above 2 (Debian's default, 3) a server as a
 * non-root uid without CAP_SYS_ADMIN cannot attach tracepoints, and says so at start.
 */
export const PERF_EVENT_PARANOID: number | null = (() => {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/kernel/perf_event_paranoid").trim());
  } catch {
    return null;
  }
})();

export const KFREE_SKB_HAS_REASON = (() => {
  for (const dir of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    try {
      return /field:[^;]*\breason;/.test(
        Deno.readTextFileSync(`${dir}/events/skb/kfree_skb/format`),
      );
    } catch {
      // not this tracefs
    }
  }
  return true; // unprivileged: the privileged tests do not run
})();

/** The reason a drop of `name` has on this kernel: the name, or null where none is given. */
export function dropReasonOf(name: string): string | null {
  return KFREE_SKB_HAS_REASON ? name : null;
}

/** The summary key of such drops: the name, or `unknown`. */
export function dropReasonKey(name: string): string {
  return KFREE_SKB_HAS_REASON ? name : "unknown";
}

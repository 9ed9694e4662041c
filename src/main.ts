/**
 * Wiring only: flags and environment -> config -> store -> programs -> HTTP.
 *
 * @module
 */

import { ConfigError, HELP, parseConfig } from "./config.ts";
import { hugePageBuffer } from "./ffi/shim.ts";
import { Access } from "./http/access.ts";
import { createApp } from "./http/app.ts";
import {
  connectionCap,
  FD_RESERVE,
  MIN_CONNECTIONS,
  openFileLimit,
  SHUTDOWN_DEADLINE_MS,
} from "./http/limits.ts";
import { loadWebConfig, WebConfigError } from "./http/web_config.ts";
import { setKernelAddressesExposed } from "./kernel/addresses.ts";
import { kernelInfo } from "./kernel/release.ts";
import { log, type LogLevel, setLogLevel } from "./log.ts";
import { ProgramManager } from "./programs/manager.ts";
import { programs } from "./programs/mod.ts";
import { setDnsOptions } from "./programs/dns/mod.ts";
import { preflight } from "./preflight.ts";
import { listen, type Server } from "./server/listen.ts";
import { startShutdownWatchdog } from "./server/watchdog.ts";
import { Store } from "./store/mod.ts";
import { VERSION } from "./version.ts";

function fail(message: string, code: number): number {
  console.error(`ebpf-server: ${message}`);
  return code;
}

/** One line at start-up: the kernel, and per program what it runs without on it. */
function logCapabilities(manager: ProgramManager, names: string[]): void {
  const kernel = kernelInfo();
  const fields: Record<string, string> = { release: kernel.release, btf: kernel.btf ?? "none" };
  for (const name of names) {
    const caps = manager.capabilities(name);
    const parts: string[] = [caps.state];
    const fallbacks = caps.features.filter((f) => !f.available).map((f) => f.name);
    const leftOut = caps.hooks.filter((h) => h.optional && !h.attached).map((h) => h.program);
    if (caps.unknown_fields.length) parts.push(`unknown fields: ${caps.unknown_fields.join(",")}`);
    if (fallbacks.length) parts.push(`fallbacks: ${fallbacks.join(",")}`);
    if (leftOut.length) parts.push(`hooks left out: ${leftOut.join(",")}`);
    fields[name] = parts.join("; ");
  }
  log.info("kernel capabilities (GET /api/capabilities)", fields);
}

/**
 * Runs the server until SIGINT/SIGTERM. Returns the exit code when it cannot start; on a signal
 * it detaches everything and exits the process with 0.
 */
export async function main(
  args: string[],
  options: { defaultLogLevel?: LogLevel } = {},
): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(args, Deno.env.toObject(), {
      defaultLogLevel: options.defaultLogLevel,
      knownPrograms: [...programs.keys()],
    });
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, 2);
    throw err;
  }
  if (parsed.kind === "help") {
    console.log(HELP);
    return 0;
  }
  if (parsed.kind === "version") {
    console.log(`ebpf-server ${VERSION}`);
    return 0;
  }
  const config = parsed.config;
  setLogLevel(config.logLevel);
  setKernelAddressesExposed(config.exposeKernelAddresses);

  // a bad web config is refused before anything else, naming its line
  let webConfig = null;
  if (config.webConfigFile) {
    try {
      webConfig = loadWebConfig(config.webConfigFile);
    } catch (err) {
      if (err instanceof WebConfigError) return fail(err.message, 2);
      throw err;
    }
  }
  const fdLimit = openFileLimit();
  const { cap: maxConnections, limitedBy } = connectionCap(config.maxConnections, fdLimit);
  if (maxConnections < MIN_CONNECTIONS) {
    return fail(
      `the open-file limit (${fdLimit}) leaves ${maxConnections} client connections; raise it (ulimit -n) to at least ${
        MIN_CONNECTIONS + FD_RESERVE
      }`,
      1,
    );
  }

  const checked = preflight(config.programs ?? [...programs.keys()]);
  if (checked.problem) return fail(checked.problem, 1);
  for (const warning of checked.warnings) log.warn(warning);

  setDnsOptions({ ports: config.dnsPorts, timeoutMs: config.dnsTimeoutMs });
  const startedAt = Date.now();
  const store = new Store(config.storeCapacity, { memory: hugePageBuffer });
  const manager = new ProgramManager(programs.values(), store, {
    ...(config.ringSize === null ? {} : { ringSize: config.ringSize }),
    drainIntervalMs: config.drainIntervalMs,
    selfPid: Deno.pid,
    leaveOut: (Deno.env.get("EBPF_SERVER_LEAVE_OUT_HOOKS") ?? "").split(",").filter((h) => h),
  });
  const access = new Access(webConfig, { hostname: config.hostname, port: config.port });
  let server: Server | null = null;
  const app = createApp({
    programs,
    manager,
    store,
    docs: config.docs,
    startedAt,
    metricsTopCommands: config.metricsTopCommands,
    access,
    maxStreams: config.maxStreams,
    httpCounters: () => server!.counters,
  });

  try {
    server = listen((request, env) => app.fetch(request, env), {
      hostname: config.hostname,
      port: config.port,
      access,
      maxConnections,
    });
  } catch (err) {
    access.close();
    const where = `${config.hostname}:${config.port}`;
    if (err instanceof Deno.errors.AddrInUse) {
      return fail(`cannot listen on ${where}: the address is already in use`, 1);
    }
    return fail(`cannot listen on ${where}: ${(err as Error).message}`, 1);
  }
  const host = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  log.info("listening", {
    url: `${server.tls ? "https" : "http"}://${host}:${server.port}`,
    max_connections: maxConnections,
    ...(limitedBy === "fd_limit" ? { capped_by_open_file_limit: fdLimit } : {}),
  });
  access.port = server.port;
  for (const warning of access.warnings()) log.warn(warning);
  access.watch();

  manager.selfPort = server.port;
  const wanted = config.programs ?? [...programs.keys()];
  const errors: string[] = [];
  for (const name of wanted) {
    try {
      manager.start(name);
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (wanted.length > 0 && errors.length === wanted.length) {
    await manager.close();
    await server.close();
    access.close();
    return fail(`no BPF program could be loaded (${errors.join("; ")})`, 1);
  }
  logCapabilities(manager, [...programs.keys()]);
  manager.startDraining();

  // SIGTERM ends the process within SHUTDOWN_DEADLINE_MS even while a query runs
  await startShutdownWatchdog(SHUTDOWN_DEADLINE_MS);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    await manager.close();
    await Promise.race([server!.close(), new Promise((r) => setTimeout(r, 500))]);
    access.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  await new Promise(() => {}); // the server runs until a signal ends the process
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

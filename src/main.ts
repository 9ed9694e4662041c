/**
 * Wiring only: flags and environment -> config -> store -> programs -> HTTP.
 *
 * @module
 */

import { ConfigError, HELP, parseConfig } from "./config.ts";
import { hugePageBuffer } from "./ffi/shim.ts";
import { createApp } from "./http/app.ts";
import { setKernelAddressesExposed } from "./kernel/addresses.ts";
import { kernelInfo } from "./kernel/release.ts";
import { log, type LogLevel, setLogLevel } from "./log.ts";
import { ProgramManager } from "./programs/manager.ts";
import { programs } from "./programs/mod.ts";
import { setDnsOptions } from "./programs/dns/mod.ts";
import { preflight } from "./preflight.ts";
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

  const checked = preflight(config.programs ?? [...programs.keys()]);
  if (checked.problem) return fail(checked.problem, 1);
  for (const warning of checked.warnings) log.warn(warning);

  setDnsOptions({ ports: config.dnsPorts, timeoutMs: config.dnsTimeoutMs });
  const startedAt = Date.now();
  const store = new Store(config.storeCapacity, { memory: hugePageBuffer });
  const manager = new ProgramManager(programs.values(), store, {
    ringSize: config.ringSize,
    drainIntervalMs: config.drainIntervalMs,
    selfPid: Deno.pid,
    leaveOut: (Deno.env.get("EBPF_SERVER_LEAVE_OUT_HOOKS") ?? "").split(",").filter((h) => h),
  });
  const app = createApp({
    programs,
    manager,
    store,
    docs: config.docs,
    startedAt,
    metricsTopCommands: config.metricsTopCommands,
  });

  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: config.hostname,
      port: config.port,
      onListen: ({ hostname, port }) => {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        log.info("listening", { url: `http://${host}:${port}` });
      },
    }, app.fetch);
  } catch (err) {
    const where = `${config.hostname}:${config.port}`;
    if (err instanceof Deno.errors.AddrInUse) {
      return fail(`cannot listen on ${where}: the address is already in use`, 1);
    }
    return fail(`cannot listen on ${where}: ${(err as Error).message}`, 1);
  }

  manager.selfPort = (server.addr as Deno.NetAddr).port;
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
    await server.shutdown();
    return fail(`no BPF program could be loaded (${errors.join("; ")})`, 1);
  }
  logCapabilities(manager, [...programs.keys()]);
  manager.startDraining();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    await manager.close();
    await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 500))]);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  await server.finished;
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

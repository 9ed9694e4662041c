/**
 * One parsed, validated configuration from flags and environment, with the `--help` text.
 * Flags are parsed with `node:util`'s `parseArgs` (the stand-in for `@std/cli`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_STREAMS,
  FD_RESERVE,
  MIN_CONNECTIONS,
} from "./http/limits.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

export interface Config {
  hostname: string;
  port: number;
  storeCapacity: number;
  /** Bytes of every program's ring buffer (`--ring-size`); null: each program's own default. */
  ringSize: number | null;
  drainIntervalMs: number;
  /** Programs to start at launch; null means all. */
  programs: string[] | null;
  logLevel: LogLevel;
  docs: boolean;
  /** How many commands get their own label in /metrics. */
  metricsTopCommands: number;
  /** Whether answers show raw kernel addresses (they give away KASLR). */
  exposeKernelAddresses: boolean;
  /** Ports the dns program watches. */
  dnsPorts: number[];
  /** How long a DNS query waits for its answer before it is a timeout, in ms. */
  dnsTimeoutMs: number;
  /** `--web.config.file`: TLS and credentials (Prometheus exporter-toolkit format), or null. */
  webConfigFile: string | null;
  /** Client connections held at once (at most the open-file limit minus a reserve). */
  maxConnections: number;
  /** Clients of /api/events/stream at once. */
  maxStreams: number;
}

export const DEFAULTS = {
  addr: ":8080",
  storeCapacity: 1_000_000,
  /** A program's ring buffer unless it says otherwise (see RING_SIZES in --help). */
  ringSize: 16 * 1024 * 1024,
  drainIntervalMs: 1000,
  metricsTopCommands: 20,
  dnsPorts: [53],
  dnsTimeoutMs: 5000,
  logLevel: "info" as LogLevel,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxStreams: DEFAULT_MAX_STREAMS,
};

export const HELP = `ebpf-server: what this host's processes do on the network, over REST.

Usage: sudo ebpf-server [flags]

Flags:
  --addr ADDR             where to listen, HOST:PORT or :PORT (default ${DEFAULTS.addr};
                          the PORT variable gives :PORT when --addr is not set)
  --store-capacity N      events kept in memory, all programs together; the oldest are
                          evicted (and counted) beyond it (default ${DEFAULTS.storeCapacity})
  --ring-size BYTES       size of each program's kernel ring buffer, a power of two of at
                          least 4096 (default: ${DEFAULTS.ringSize} for connection, tcp_life
                          and packet_drop, 4194304 for dns, 1048576 for cgroup, which have
                          fewer events); events that find it full are counted as lost
  --drain-interval MS     the longest an event waits in a ring before it is moved to the
                          store, 1-10000 ms (default ${DEFAULTS.drainIntervalMs}); a ring half
                          full is drained at once, queries drain first, and live streams
                          get events within 50 ms; kernel counters are read at drains (at
                          most once a second), so a summary window's start is exact to the
                          larger of 1 s and this
  --programs LIST         comma-separated programs to start (default: all); the others can be
                          started later with POST /api/programs/NAME/start
  --metrics-top-commands N
                          commands that get their own label in /metrics, the busiest
                          ones when chosen; the rest are summed as "other" (default ${DEFAULTS.metricsTopCommands});
                          the dns program caps its query names the same way
  --dns-ports LIST        comma-separated ports whose packets are DNS, at most 8
                          (default ${DEFAULTS.dnsPorts.join(",")})
  --dns-timeout SECONDS   how long a DNS query waits for its answer before it is an event
                          with outcome "timeout", 0.1-300 (default ${DEFAULTS.dnsTimeoutMs / 1000})
  --log-level LEVEL       debug, info, warn or error (default: LOG_LEVEL, else ${DEFAULTS.logLevel});
                          debug logs every decoded event
  --no-docs               do not serve /docs (Swagger UI); /openapi.json stays
  --expose-kernel-addresses
                          show the raw kernel address of each packet drop (location,
                          and in by_location for addresses without a symbol); off by
                          default, since it tells anyone who can read the API where the
                          kernel is loaded (KASLR); location_symbol is always shown
  --web.config.file FILE  TLS and credentials, in the Prometheus exporter-toolkit format
                          (tls_server_config, basic_auth_users with bcrypt hashes), plus
                          bearer_tokens (SHA-256 of each token) and scopes (read, or control
                          to start and stop programs); re-read when it or a file it names
                          changes, or on SIGHUP; a bad file is refused at start naming its
                          line. Without it: plain HTTP, no credentials, and start/stop
                          answer loopback clients only. See README "Security"
  --web.max-connections N client connections at once, more are closed as they arrive
                          (default ${DEFAULTS.maxConnections}; at most the open-file limit minus ${FD_RESERVE})
  --web.max-streams N     clients of /api/events/stream at once, more get 429
                          (default ${DEFAULTS.maxStreams})
  -h, --help              show this text
  -V, --version           show the version

Every flag also takes Go's spellings, as the binary of the project this grew from did:
-addr :9090, -addr=:9090, --addr=:9090; -no-docs, -no-docs=true, -no-docs=false.

Environment:
  PORT                    port to listen on when --addr is not given
  LOG_LEVEL               default of --log-level
  DOCS_ENABLED            false to turn /docs off (default true)

It needs root, or these capabilities: CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH (tracefs
is mode 0700), CAP_NET_ADMIN (the dns program's cgroup programs; not without dns) and
CAP_SYSLOG (function names of drop locations; without it they are null),
and a kernel with BTF (/sys/kernel/btf/vmlinux). deploy/ebpf-server.service runs it as its
own user with exactly these. SIGINT or SIGTERM detaches every program and exits.
`;

/** A configuration problem the user can fix; main prints the message and exits with 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Every flag, in `parseArgs`' terms; each also takes Go's spellings (see {@linkcode goFlags}). */
const OPTIONS = {
  addr: { type: "string" },
  "store-capacity": { type: "string" },
  "ring-size": { type: "string" },
  "drain-interval": { type: "string" },
  programs: { type: "string" },
  "metrics-top-commands": { type: "string" },
  "dns-ports": { type: "string" },
  "dns-timeout": { type: "string" },
  "log-level": { type: "string" },
  "no-docs": { type: "boolean" },
  "expose-kernel-addresses": { type: "boolean" },
  "web.config.file": { type: "string" },
  "web.max-connections": { type: "string" },
  "web.max-streams": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const satisfies Record<string, { type: "string" | "boolean"; short?: string }>;

type OptionName = keyof typeof OPTIONS;

function isOption(name: string): name is OptionName {
  return Object.hasOwn(OPTIONS, name);
}

/** What Go's `strconv.ParseBool` accepts. */
const GO_BOOLS: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

/**
 * Rewrites the spellings of Go's `flag` package, which the binary of the project this grew from
 * took (`sudo ./bin/ebpf-server -addr :9090`), into `parseArgs`' own: `-name value`, `-name=value`
 * and `--name=value` for every long flag, and `-name=true|false` (or `1`, `0`, ...) for a boolean
 * one. A single dash before a word that is no flag is an error naming it, not a bundle of short
 * flags (`-adr` would otherwise be read as `-a -d -r`).
 */
function goFlags(args: string[]): string[] {
  const shorts = new Set<string>(
    Object.values(OPTIONS).flatMap((o) => "short" in o ? [o.short] : []),
  );
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^(--?)([A-Za-z][A-Za-z0-9.-]*)(?:=([^]*))?$/.exec(arg);
    if (!m || (m[1] === "-" && m[2].length === 1)) {
      out.push(arg);
      continue;
    }
    const [, dashes, name, value] = m;
    if (!isOption(name)) {
      const bundle = dashes === "-" && value === undefined && [...name].every((c) => shorts.has(c));
      if (dashes === "-" && !bundle) {
        throw new ConfigError(`unknown flag '${arg}'; see --help`);
      }
      out.push(arg); // parseArgs names it
      continue;
    }
    if (OPTIONS[name].type === "boolean") {
      if (value === undefined) {
        out.push(`--${name}`);
        continue;
      }
      const on = GO_BOOLS[value];
      if (on === undefined) {
        throw new ConfigError(`${dashes}${name}=${value}: the value must be true or false`);
      }
      if (on) out.push(`--${name}`);
      continue;
    }
    if (value !== undefined) {
      out.push(`--${name}=${value}`);
    } else {
      out.push(`--${name}`);
      if (i + 1 < args.length) out.push(args[++i]); // the value, whatever it looks like
    }
  }
  return out;
}

/** What the command line asked for. */
export type ParsedArgs = { kind: "help" } | { kind: "version" } | { kind: "run"; config: Config };

function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(addr);
  if (!m) {
    throw new ConfigError(
      `--addr '${addr}' must be HOST:PORT or :PORT, e.g. :9090 or 127.0.0.1:9090`,
    );
  }
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`--addr '${addr}': port must be 0-65535`);
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

function parseInteger(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new ConfigError(`${flag} '${text}' must be a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(`${flag} ${n} must be from ${min} to ${max}`);
  return n;
}

function parsePorts(flag: string, text: string, max: number): number[] {
  const ports = text.split(",").map((p) => p.trim());
  if (ports.length > max) {
    throw new ConfigError(`${flag}: at most ${max} ports, not ${ports.length}`);
  }
  return [...new Set(ports.map((p) => parseInteger(flag, p, 1, 65535)))];
}

function parseSeconds(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(text)) {
    throw new ConfigError(`${flag} '${text}' must be seconds, e.g. 5 or 2.5`);
  }
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(`${flag} ${n} must be from ${min} to ${max}`);
  return n;
}

/**
 * Parses flags and environment.
 *
 * @example
 * ```ts
 * const parsed = parseConfig(["--addr", ":9090"], {});
 * ```
 */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined>,
  options: { defaultLogLevel?: LogLevel; knownPrograms?: readonly string[] } = {},
): ParsedArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: goFlags(args),
      strict: true,
      allowPositionals: false,
      options: OPTIONS,
    }));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${(err as Error).message}; see --help`);
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  let addr = values.addr;
  if (addr === undefined && env.PORT !== undefined && env.PORT !== "") {
    parseInteger("PORT", env.PORT, 0, 65535);
    addr = `:${env.PORT}`;
  }
  const { hostname, port } = parseAddr(addr ?? DEFAULTS.addr);

  const storeCapacity = values["store-capacity"] === undefined
    ? DEFAULTS.storeCapacity
    : parseInteger("--store-capacity", values["store-capacity"], 1, 100_000_000);
  const ringSize = values["ring-size"] === undefined
    ? null
    : parseInteger("--ring-size", values["ring-size"], 4096, 1 << 30);
  if (ringSize !== null && (ringSize & (ringSize - 1)) !== 0) {
    throw new ConfigError(`--ring-size ${ringSize} must be a power of two (e.g. 16777216)`);
  }
  const drainIntervalMs = values["drain-interval"] === undefined
    ? DEFAULTS.drainIntervalMs
    : parseInteger("--drain-interval", values["drain-interval"], 1, 10_000);

  const metricsTopCommands = values["metrics-top-commands"] === undefined
    ? DEFAULTS.metricsTopCommands
    : parseInteger("--metrics-top-commands", values["metrics-top-commands"], 0, 1000);

  const dnsPorts = values["dns-ports"] === undefined
    ? DEFAULTS.dnsPorts
    : parsePorts("--dns-ports", values["dns-ports"], 8);
  const dnsTimeoutMs = values["dns-timeout"] === undefined
    ? DEFAULTS.dnsTimeoutMs
    : parseSeconds("--dns-timeout", values["dns-timeout"], 0.1, 300) * 1000;

  let programs: string[] | null = null;
  if (values.programs !== undefined) {
    programs = values.programs.split(",").map((s) => s.trim()).filter(Boolean);
    const known = options.knownPrograms;
    const unknown = known ? programs.filter((p) => !known.includes(p)) : [];
    if (unknown.length) {
      throw new ConfigError(
        `--programs: no program named ${unknown.map((u) => `'${u}'`).join(", ")}; known: ${
          known!.join(", ")
        }`,
      );
    }
  }

  const levelText = values["log-level"] ?? (env.LOG_LEVEL || undefined) ??
    options.defaultLogLevel ??
    DEFAULTS.logLevel;
  const logLevel = levelText.toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    const source = values["log-level"] !== undefined ? "--log-level" : "LOG_LEVEL";
    throw new ConfigError(`${source} '${levelText}' must be one of ${LOG_LEVELS.join(", ")}`);
  }

  let docs = true;
  const docsEnv = env.DOCS_ENABLED?.toLowerCase();
  if (docsEnv !== undefined && docsEnv !== "") {
    if (["false", "0", "no", "off"].includes(docsEnv)) docs = false;
    else if (!["true", "1", "yes", "on"].includes(docsEnv)) {
      throw new ConfigError(`DOCS_ENABLED '${env.DOCS_ENABLED}' must be true or false`);
    }
  }
  if (values["no-docs"]) docs = false;

  const webConfigFile = values["web.config.file"] ?? null;
  if (webConfigFile === "") throw new ConfigError("--web.config.file needs a file name");
  const maxConnections = values["web.max-connections"] === undefined
    ? DEFAULTS.maxConnections
    : parseInteger(
      "--web.max-connections",
      values["web.max-connections"],
      MIN_CONNECTIONS,
      1_000_000,
    );
  const maxStreams = values["web.max-streams"] === undefined
    ? DEFAULTS.maxStreams
    : parseInteger("--web.max-streams", values["web.max-streams"], 0, 10_000);

  return {
    kind: "run",
    config: {
      hostname,
      port,
      storeCapacity,
      ringSize,
      drainIntervalMs,
      programs,
      logLevel,
      docs,
      metricsTopCommands,
      exposeKernelAddresses: values["expose-kernel-addresses"] === true,
      dnsPorts,
      dnsTimeoutMs,
      webConfigFile,
      maxConnections,
      maxStreams,
    },
  };
}

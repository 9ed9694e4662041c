import assert from "node:assert/strict";
import { type Config, ConfigError, DEFAULTS, HELP, parseConfig } from "./config.ts";

/** The config of a `run` parse; fails the test for help/version. */
function run(args: string[], env: Record<string, string | undefined> = {}, options = {}): Config {
  const parsed = parseConfig(args, env, options);
  assert.equal(parsed.kind, "run");
  return (parsed as { kind: "run"; config: Config }).config;
}

/** Asserts parsing throws a ConfigError whose message names `name`. */
function assertRejects(
  args: string[],
  env: Record<string, string | undefined>,
  name: string,
  options = {},
): void {
  assert.throws(
    () => parseConfig(args, env, options),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
      assert.ok(
        err.message.includes(name),
        `the message '${err.message}' should name ${name}`,
      );
      return true;
    },
  );
}

Deno.test("parseConfig without flags gives the defaults", () => {
  assert.deepEqual(run([]), {
    hostname: "0.0.0.0",
    port: 8080,
    storeCapacity: DEFAULTS.storeCapacity,
    ringSize: null,
    drainIntervalMs: DEFAULTS.drainIntervalMs,
    programs: null,
    logLevel: "info",
    docs: true,
    metricsTopCommands: DEFAULTS.metricsTopCommands,
    exposeKernelAddresses: false,
    dnsPorts: [53],
    dnsTimeoutMs: 5000,
    webConfigFile: null,
    maxConnections: DEFAULTS.maxConnections,
    maxStreams: DEFAULTS.maxStreams,
  });
});

Deno.test("parseConfig shows kernel addresses only with --expose-kernel-addresses", () => {
  assert.equal(run([]).exposeKernelAddresses, false);
  assert.equal(run(["--expose-kernel-addresses"]).exposeKernelAddresses, true);
  assert.throws(() => run(["--expose-kernel-addresses=yes"]), /expose-kernel-addresses/);
});

Deno.test("parseConfig --web.* flags", () => {
  const config = run([
    "--web.config.file",
    "/etc/ebpf-server/web.yml",
    "--web.max-connections=100",
    "--web.max-streams",
    "4",
  ]);
  assert.equal(config.webConfigFile, "/etc/ebpf-server/web.yml");
  assert.equal(config.maxConnections, 100);
  assert.equal(config.maxStreams, 4);
  // Prometheus' exporters spell it with one dash, as Go's flag package does
  assert.equal(run(["-web.config.file", "/etc/w.yml"]).webConfigFile, "/etc/w.yml");
  assert.equal(run(["-web.max-streams=8"]).maxStreams, 8);
  assertRejects(["--web.config.file="], {}, "--web.config.file needs a file name");
  assertRejects(["--web.max-connections", "5"], {}, "--web.max-connections 5 must be from 16");
  assertRejects(["--web.max-connections", "many"], {}, "--web.max-connections 'many'");
  assertRejects(["--web.max-streams=-1"], {}, "--web.max-streams '-1'");
});

Deno.test("parseConfig --addr forms", () => {
  assert.deepEqual(pick(run(["--addr", ":9090"])), { hostname: "0.0.0.0", port: 9090 });
  assert.deepEqual(pick(run(["--addr", "127.0.0.1:9191"])), {
    hostname: "127.0.0.1",
    port: 9191,
  });
  assert.deepEqual(pick(run(["--addr", "[::1]:9090"])), { hostname: "::1", port: 9090 });
  assert.deepEqual(pick(run(["--addr=localhost:80"])), { hostname: "localhost", port: 80 });
});

function pick(config: Config) {
  return { hostname: config.hostname, port: config.port };
}

Deno.test("parseConfig uses PORT only when --addr is absent", () => {
  assert.deepEqual(pick(run([], { PORT: "7000" })), { hostname: "0.0.0.0", port: 7000 });
  assert.deepEqual(pick(run(["--addr", ":9090"], { PORT: "7000" })), {
    hostname: "0.0.0.0",
    port: 9090,
  });
  assert.equal(run([], { PORT: "" }).port, 8080);
  assertRejects([], { PORT: "http" }, "PORT");
});

Deno.test("parseConfig rejects bad values, naming the flag", () => {
  assertRejects(["--addr", "nonsense"], {}, "--addr");
  assertRejects(["--addr", ":99999"], {}, "--addr");
  assertRejects(["--store-capacity", "0"], {}, "--store-capacity");
  assertRejects(["--store-capacity", "abc"], {}, "--store-capacity");
  assertRejects(["--ring-size", "5000"], {}, "--ring-size");
  assertRejects(["--ring-size", "1024"], {}, "--ring-size");
  assertRejects(["--drain-interval", "0"], {}, "--drain-interval");
  assertRejects(["--drain-interval", "10001"], {}, "--drain-interval");
  assertRejects(["--frobnicate"], {}, "--frobnicate");
  assertRejects(["--log-level", "loud"], {}, "--log-level");
  assertRejects([], { LOG_LEVEL: "loud" }, "LOG_LEVEL");
  assertRejects([], { DOCS_ENABLED: "maybe" }, "DOCS_ENABLED");
});

Deno.test("parseConfig --dns-ports and --dns-timeout", () => {
  assert.deepEqual(run(["--dns-ports", "53, 5353,53"]).dnsPorts, [53, 5353]);
  assert.equal(run(["--dns-timeout", "2.5"]).dnsTimeoutMs, 2500);
  assert.equal(run(["--dns-timeout", "1"]).dnsTimeoutMs, 1000);
  assertRejects(["--dns-ports", "0"], {}, "--dns-ports");
  assertRejects(["--dns-ports", "53,x"], {}, "--dns-ports");
  assertRejects(["--dns-ports", "1,2,3,4,5,6,7,8,9"], {}, "--dns-ports");
  assertRejects(["--dns-ports", ""], {}, "--dns-ports");
  assertRejects(["--dns-timeout", "0"], {}, "--dns-timeout");
  assertRejects(["--dns-timeout", "-1"], {}, "--dns-timeout");
  assertRejects(["--dns-timeout", "5s"], {}, "--dns-timeout");
  assertRejects(["--dns-timeout", "301"], {}, "--dns-timeout");
});

Deno.test("parseConfig --programs is checked against knownPrograms", () => {
  const options = { knownPrograms: ["connection", "packet_drop"] };
  assertRejects(["--programs", "connection,nosuch"], {}, "nosuch", options);
  assertRejects(["--programs", "nosuch"], {}, "--programs", options);
  assert.deepEqual(run(["--programs", "connection, packet_drop,"], {}, options).programs, [
    "connection",
    "packet_drop",
  ]);
  // without a list of known programs, any name passes
  assert.deepEqual(run(["--programs", "anything"]).programs, ["anything"]);
});

Deno.test("parseConfig reads numbers and the log level", () => {
  const config = run([
    "--store-capacity",
    "5000",
    "--ring-size",
    "65536",
    "--drain-interval",
    "50",
    "--log-level",
    "DEBUG",
  ]);
  assert.equal(config.storeCapacity, 5000);
  assert.equal(config.ringSize, 65536);
  assert.equal(config.drainIntervalMs, 50);
  assert.equal(config.logLevel, "debug");
  assert.equal(run([], { LOG_LEVEL: "warn" }).logLevel, "warn");
  assert.equal(run(["--log-level", "error"], { LOG_LEVEL: "warn" }).logLevel, "error");
  assert.equal(run([], {}, { defaultLogLevel: "debug" }).logLevel, "debug");
});

Deno.test("parseConfig treats an empty LOG_LEVEL as unset, like PORT and DOCS_ENABLED", () => {
  assert.equal(run([], { LOG_LEVEL: "" }).logLevel, "info");
});

Deno.test("parseConfig turns docs off with DOCS_ENABLED=false or --no-docs", () => {
  assert.equal(run([], { DOCS_ENABLED: "false" }).docs, false);
  assert.equal(run([], { DOCS_ENABLED: "0" }).docs, false);
  assert.equal(run([], { DOCS_ENABLED: "FALSE" }).docs, false);
  assert.equal(run([], { DOCS_ENABLED: "true" }).docs, true);
  assert.equal(run([], { DOCS_ENABLED: "" }).docs, true);
  assert.equal(run(["--no-docs"]).docs, false);
  assert.equal(run(["--no-docs"], { DOCS_ENABLED: "true" }).docs, false);
});

Deno.test("parseConfig --help and --version", () => {
  assert.deepEqual(parseConfig(["--help"], {}), { kind: "help" });
  assert.deepEqual(parseConfig(["-h"], {}), { kind: "help" });
  assert.deepEqual(parseConfig(["--version"], {}), { kind: "version" });
  assert.deepEqual(parseConfig(["-V"], {}), { kind: "version" });
  // help wins over a bad value elsewhere
  assert.deepEqual(parseConfig(["--help", "--store-capacity", "0"], {}), { kind: "help" });
});

Deno.test("HELP mentions every flag parseConfig defines", async () => {
  const source = await Deno.readTextFile(new URL("./config.ts", import.meta.url));
  const names = [...source.matchAll(/^\s*(?:"([a-z][a-z0-9-]*)"|([a-z][a-z0-9]*)): \{ type\b/gm)]
    .map((m) => m[1] ?? m[2]);
  // the regex must see the flags, or this test would pass with nothing to check
  for (const known of ["addr", "store-capacity", "no-docs", "help", "version"]) {
    assert.ok(names.includes(known), `the options list should have ${known}; found ${names}`);
  }
  for (const name of names) {
    assert.match(HELP, new RegExp(`--${name}(?![\\w-])`), `HELP does not mention --${name}`);
  }
  const shorts = [...source.matchAll(/short: "(\w)"/g)].map((m) => m[1]);
  assert.ok(shorts.length >= 2);
  for (const short of shorts) assert.match(HELP, new RegExp(`-${short},`));
  for (const variable of ["PORT", "LOG_LEVEL", "DOCS_ENABLED"]) assert.ok(HELP.includes(variable));
});

Deno.test("parseConfig takes Go's flag spellings, as the original binary did", () => {
  // The original README: sudo ./bin/ebpf-server -addr :9090
  assert.deepEqual(pick(run(["-addr", ":9090"])), { hostname: "0.0.0.0", port: 9090 });
  assert.deepEqual(pick(run(["-addr=127.0.0.1:9191"])), { hostname: "127.0.0.1", port: 9191 });
  assert.deepEqual(pick(run(["--addr=:7070"])), { hostname: "0.0.0.0", port: 7070 });
  const config = run([
    "-store-capacity",
    "5000",
    "-ring-size=65536",
    "-drain-interval",
    "50",
    "-programs",
    "connection",
    "-metrics-top-commands=3",
    "-log-level",
    "warn",
  ]);
  assert.equal(config.storeCapacity, 5000);
  assert.equal(config.ringSize, 65536);
  assert.equal(config.drainIntervalMs, 50);
  assert.deepEqual(config.programs, ["connection"]);
  assert.equal(config.metricsTopCommands, 3);
  assert.equal(config.logLevel, "warn");
  // a value that looks like a flag is still the value of the flag before it
  assertRejects(["-log-level", "-addr"], {}, "--log-level");
});

Deno.test("parseConfig reads Go's boolean spellings", () => {
  assert.equal(run(["-no-docs"]).docs, false);
  for (const on of ["true", "1", "t", "TRUE", "True"]) {
    assert.equal(run([`-no-docs=${on}`]).docs, false, `-no-docs=${on}`);
    assert.equal(run([`--no-docs=${on}`]).docs, false, `--no-docs=${on}`);
  }
  for (const off of ["false", "0", "f", "FALSE", "False"]) {
    assert.equal(run([`-no-docs=${off}`]).docs, true, `-no-docs=${off}`);
  }
  assertRejects(["-no-docs=maybe"], {}, "-no-docs");
  assert.deepEqual(parseConfig(["-help"], {}), { kind: "help" });
  assert.deepEqual(parseConfig(["-version"], {}), { kind: "version" });
  assert.deepEqual(parseConfig(["-help=false", "-version"], {}), { kind: "version" });
});

Deno.test("parseConfig names a single-dash word that is no flag", () => {
  // not read as the short flags -a -d -r
  assertRejects(["-adr", ":9090"], {}, "'-adr'");
  assertRejects(["-frobnicate"], {}, "'-frobnicate'");
  assertRejects(["-x"], {}, "-x");
  // short flags may still be bundled
  assert.deepEqual(parseConfig(["-hV"], {}), { kind: "help" });
});

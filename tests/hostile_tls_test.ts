/**
 * `--web.config.file` end to end (issue 13): the real server over TLS with client certificates
 * (RequireAndVerifyClientCert), bearer tokens and basic auth; a real Prometheus (Debian's
 * `prometheus` package) scrapes it with its own `tls_config` and `authorization`, and the jobs
 * without the token or without the certificate get nothing; credentials and certificates are
 * re-read when the file changes and on SIGHUP; plain HTTP on the TLS port gets no data; a bad
 * file is refused at start naming its line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import bcrypt from "bcryptjs";
import { makePki } from "../src/http/_tls_testing.ts";
import { programs } from "../src/programs/mod.ts";
import {
  canRunPrivileged,
  CONTROL,
  freePort,
  GiveUp,
  inCI,
  privileged,
  runMain,
  type ServerHandle,
  spawnCollecting,
  startServer,
  waitFor,
  which,
} from "./_server.ts";

const PROMETHEUS = which("prometheus");
const READ = "read-token-for-prometheus-0123456789";
const CONTROL_TOKEN = "control-token-for-operators-0123456789";
const NEW_READ = "a-new-read-token-after-reload-0123456789";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function webConfig(tokens: [string, "read" | "control"][], extra: string[] = []): string {
  return [
    "tls_server_config:",
    "  cert_file: server.crt",
    "  key_file: server.key",
    "  client_ca_file: ca.crt",
    "  client_auth_type: RequireAndVerifyClientCert",
    "  min_version: TLS12",
    "basic_auth_users:",
    `  alice: ${bcrypt.hashSync("alice-password", 4).replace("$2b$", "$2y$")}`,
    "basic_auth_scopes:",
    "  alice: control",
    "bearer_tokens:",
    ...tokens.flatMap(([t, scope]) => [`  - sha256: ${sha256(t)}`, `    scope: ${scope}`]),
    ...extra,
    "",
  ].join("\n");
}

/** The SHA-256 fingerprint of the certificate the server presents now. */
function servedFingerprint(port: number, client: { cert: string; key: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, ...client },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      },
    );
    socket.on("error", reject);
  });
}

interface Prometheus extends AsyncDisposable {
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stderr(): string;
}

async function startPrometheus(binary: string, dir: string, jobs: string[]): Promise<Prometheus> {
  const config = `${dir}/prometheus.yml`;
  await Deno.writeTextFile(
    config,
    ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:", ...jobs, ""]
      .join("\n"),
  );
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = spawnCollecting(binary, {
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${dir}/data-${attempt}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
    });
    const prom: Prometheus = {
      async query(promql) {
        const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = await res.json();
        if (res.status !== 200) throw new Error(`prometheus ${promql}: ${JSON.stringify(body)}`);
        return body.data.result;
      },
      stderr: proc.stderr,
      [Symbol.asyncDispose]: async () => {
        await proc.stop("SIGTERM", 10_000);
      },
    };
    try {
      await waitFor("prometheus to be ready", async () => {
        if (proc.exit()) throw new GiveUp(`prometheus exited:\n${proc.stderr()}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status === 200 ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      return prom;
    } catch (err) {
      await proc.stop("SIGTERM", 10_000);
      lastError = `${(err as Error).message}\n${proc.stderr()}`;
      if (lastError.includes("address already in use")) continue;
      throw new Error(lastError);
    }
  }
  throw new Error(`prometheus did not start: ${lastError}`);
}

Deno.test("web config: a bad file is refused at start with the line that is wrong", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ebpf-server-webcfg-" });
  try {
    const path = `${dir}/web.yml`;
    await Deno.writeTextFile(path, "basic_auth_users:\n  alice: not-a-hash\n");
    const out = await runMain(["--addr", "127.0.0.1:0", "--web.config.file", path]);
    assert.equal(out.code, 2, out.stderr);
    assert.match(
      out.stderr,
      new RegExp(`web config ${path}:2: the password of 'alice' must be a bcrypt hash`),
    );
    const missing = await runMain(["--web.config.file", `${dir}/nosuch.yml`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read it/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: privileged(
    "web config: TLS with client certificates and tokens; a real Prometheus scrapes with its tls_config and authorization",
  ),
  ignore: !canRunPrivileged || (!PROMETHEUS && !inCI),
  async fn() {
    if (!PROMETHEUS) {
      throw new Error("prometheus is not on PATH; install Debian's 'prometheus' package");
    }
    const pki = await makePki();
    const path = `${pki.dir}/web.yml`;
    await Deno.writeTextFile(path, webConfig([[READ, "read"], [CONTROL_TOKEN, "control"]]));
    try {
      await using server = await startServer({
        args: ["--web.config.file", path],
        caCert: pki.ca.cert,
        clientCert: pki.client,
        headers: { authorization: `Bearer ${READ}` },
      });
      await checkAccess(server, pki);
      await checkPrometheus(server, pki, PROMETHEUS);
      await checkReload(server, pki, path);
      assert.equal(await server.stop(), 0);
    } finally {
      await Deno.remove(pki.dir, { recursive: true });
    }
  },
});

type Pki = Awaited<ReturnType<typeof makePki>>;

async function checkAccess(server: ServerHandle, pki: Pki): Promise<void> {
  const health = await server.json<{ security: Record<string, unknown> }>("/health");
  assert.equal(health.security.tls, true);
  assert.equal(health.security.client_auth_type, "RequireAndVerifyClientCert");
  assert.deepEqual(health.security.authentication, ["basic", "bearer"]);
  assert.equal(health.security.control, "control-scope credentials");
  assert.deepEqual(health.security.warnings, []);

  // no credentials: 401 with both challenges
  const anonymous = await server.json<{ error: string }>("/api/programs", {
    status: 401,
    headers: { authorization: "" },
  });
  assert.match(anonymous.error, /authentication required/);
  const bare = Deno.createHttpClient({ caCerts: [pki.ca.cert], ...pki.client });
  const res = await fetch(`${server.url}/health`, { client: bare } as RequestInit);
  assert.equal(res.status, 401);
  assert.equal(
    res.headers.get("www-authenticate"),
    'Basic realm="ebpf-server", Bearer realm="ebpf-server"',
  );
  await res.body?.cancel();
  bare.close();

  // a read token cannot stop anything; a control token and alice can
  const denied = await server.json<{ error: string }>("/api/programs/packet_drop/stop", {
    ...CONTROL,
    status: 403,
  });
  assert.match(denied.error, /read scope/);
  await server.json("/api/programs/packet_drop/stop", {
    ...CONTROL,
    headers: { ...CONTROL.headers, authorization: `Bearer ${CONTROL_TOKEN}` },
  });
  await server.json("/api/programs/packet_drop/start", {
    ...CONTROL,
    headers: { ...CONTROL.headers, authorization: `Basic ${btoa("alice:alice-password")}` },
  });
  assert.match(
    server.stderr(),
    /control action="stop" program="packet_drop" status=200 remote="127\.0\.0\.1:\d+" who="token:[0-9a-f]{8} \(bearer, control\)" certificate="CN=scraper"/,
  );
  assert.match(
    server.stderr(),
    /control action="start" program="packet_drop" status=200 .* who="alice \(basic, control\)"/,
  );

  // without a client certificate: no TLS session, no answer
  const noCert = Deno.createHttpClient({ caCerts: [pki.ca.cert] });
  const refused = await fetch(`${server.url}/health`, {
    client: noCert,
    headers: { authorization: `Bearer ${READ}` },
  } as RequestInit).then((r) => r.status, (e) => (e as Error).name);
  noCert.close();
  assert.notEqual(refused, 200);
  // a certificate nobody signed: the same
  const stranger = Deno.createHttpClient({ caCerts: [pki.ca.cert], ...pki.stranger });
  const strangerStatus = await fetch(`${server.url}/health`, { client: stranger } as RequestInit)
    .then((r) => r.status, (e) => (e as Error).name);
  stranger.close();
  assert.notEqual(strangerStatus, 200);

  // plain HTTP on the TLS port gets no data
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(
    new TextEncoder().encode(
      `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${READ}\r\n\r\n`,
    ),
  );
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf).catch(() => null);
  conn.close();
  const text = n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
  assert.ok(!text.includes("HTTP/1.1") && !text.includes("ebpf_server"), `plain HTTP got: ${text}`);
}

async function checkPrometheus(server: ServerHandle, pki: Pki, binary: string): Promise<void> {
  const target = `      - targets: ["127.0.0.1:${server.port}"]`;
  const tls = (withCert: boolean) => [
    "    tls_config:",
    `      ca_file: ${pki.ca.certFile}`,
    "      server_name: localhost",
    ...(withCert
      ? [`      cert_file: ${pki.client.certFile}`, `      key_file: ${pki.client.keyFile}`]
      : []),
  ];
  const job = (name: string, withCert: boolean, credentials: string | null) =>
    [
      `  - job_name: ${name}`,
      "    scheme: https",
      ...tls(withCert),
      ...(credentials
        ? ["    authorization:", "      type: Bearer", `      credentials: ${credentials}`]
        : []),
      "    static_configs:",
      target,
    ].join("\n");
  await using prom = await startPrometheus(binary, pki.dir, [
    job("good", true, READ),
    job("no-token", true, null),
    job("wrong-token", true, "not-the-token"),
    job("no-cert", false, READ),
  ]);
  const up = async (name: string) => {
    const v = await prom.query(`up{job="${name}"}`);
    return v.length ? Number(v[0].value[1]) : undefined;
  };
  await waitFor("Prometheus to scrape every job once", async () => {
    const all = await Promise.all(["good", "no-token", "wrong-token", "no-cert"].map(up));
    return all.every((v) => v !== undefined) ? all : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  await waitFor("the good job to be up", async () => (await up("good")) === 1 ? true : undefined, {
    timeoutMs: 20_000,
    intervalMs: 250,
  });
  const events = await prom.query('ebpf_server_program_events_total{job="good"}');
  assert.deepEqual(events.map((e) => e.metric.program).sort(), [...programs.keys()].sort());
  for (const name of ["no-token", "wrong-token", "no-cert"]) {
    assert.equal(await up(name), 0, `${name} gets nothing`);
    const got = await prom.query(`ebpf_server_program_events_total{job="${name}"}`);
    assert.deepEqual(got, [], `${name} stored no sample`);
  }
}

async function checkReload(server: ServerHandle, pki: Pki, path: string): Promise<void> {
  const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  // the tokens change: the old read token is refused, the new one works, without a restart
  await Deno.writeTextFile(path, webConfig([[NEW_READ, "read"], [CONTROL_TOKEN, "control"]]));
  await waitFor("the new token to work", async () => {
    const res = await server.json("/health", { ...as(NEW_READ), status: 200 }).catch(() =>
      undefined
    );
    return res ? true : undefined;
  }, { timeoutMs: 5000, intervalMs: 100 });
  await server.json("/health", { ...as(READ), status: 401 });
  assert.match(server.stderr(), /web config reloaded reason="a file changed"/);

  // the certificate changes: new connections get the new one
  const before = await servedFingerprint(server.port, pki.client);
  const next = await pki.reissueServer();
  await Deno.copyFile(next.keyFile, `${pki.dir}/server.key`);
  await Deno.copyFile(next.certFile, `${pki.dir}/server.crt`);
  await waitFor("the new server certificate", async () => {
    const now = await servedFingerprint(server.port, pki.client).catch(() => before);
    return now !== before ? now : undefined;
  }, { timeoutMs: 5000, intervalMs: 100 });

  // SIGHUP reads it again (nothing changed: the same config stays)
  Deno.kill(server.pid, "SIGHUP");
  await waitFor(
    "a reload on SIGHUP",
    () => /web config reloaded reason="SIGHUP"/.test(server.stderr()) ? true : undefined,
  );

  // a broken file is not taken: the previous config stays and /health says why
  await Deno.writeTextFile(path, "bearer_tokens:\n  - sha256: nothex\n");
  const health = await waitFor("the reload error in /health", async () => {
    const h = await server.json<{ security: { reload_error: string | null } }>("/health", {
      ...as(NEW_READ),
      headers: { ...as(NEW_READ).headers },
    }).catch(() => undefined);
    return h?.security.reload_error ? h : undefined;
  }, { timeoutMs: 5000, intervalMs: 100 });
  assert.match(
    health.security.reload_error!,
    new RegExp(`web config ${path}:2: sha256 must be 64 hex digits`),
  );
  await server.json("/health", { ...as(NEW_READ), status: 200 });
}

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import bcrypt from "bcryptjs";
import { ProgramManager } from "../programs/manager.ts";
import { programs } from "../programs/mod.ts";
import { Store } from "../store/mod.ts";
import { Access, type RequestEnv } from "./access.ts";
import { createApp } from "./app.ts";
import { DOCS_CSP } from "./guard.ts";
import { parseWebConfig } from "./web_config.ts";

const LOOPBACK: RequestEnv = { remoteAddress: "127.0.0.1", remotePort: 40000, tls: false };
const REMOTE: RequestEnv = { remoteAddress: "10.1.2.3", remotePort: 40000, tls: false };
const READ_TOKEN = "read-token-0123456789";
const CONTROL_TOKEN = "control-token-0123456789";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** An app over an empty store, with `yaml` as its web config (none when undefined). */
function setup(yaml?: string, options: { hostname?: string } = {}) {
  const store = new Store(1000);
  const manager = new ProgramManager(programs.values(), store, {
    ringSize: 1 << 16,
    drainIntervalMs: 10,
    selfPid: Deno.pid,
  });
  const config = yaml === undefined ? null : parseWebConfig(yaml, { path: "/etc/web.yml" });
  const access = new Access(config, { hostname: options.hostname ?? "127.0.0.1", port: 9090 });
  const app = createApp({ programs, manager, store, docs: true, startedAt: Date.now(), access });
  return { app, access, manager };
}

type App = ReturnType<typeof setup>["app"];

function post(headers: Record<string, string> = {}, body?: string): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body }),
  };
}

async function call(app: App, path: string, init: RequestInit = {}, env = LOOPBACK) {
  const res = await app.request(path, init, env);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

Deno.test("guard: every answer carries nosniff, deny and a CSP; /docs its own", async () => {
  const { app, access } = setup();
  for (const path of ["/health", "/nosuch", "/api/events?pid=abc", "/openapi.json"]) {
    const res = await app.request(path, {}, LOOPBACK);
    await res.body?.cancel();
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("x-frame-options"), "deny", path);
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/, path);
  }
  const docs = await app.request("/docs", {}, LOOPBACK);
  await docs.body?.cancel();
  assert.equal(docs.headers.get("content-security-policy"), DOCS_CSP);
  access.close();
});

Deno.test("guard: control is never a simple request", async () => {
  const { app, access } = setup();
  const stop = "/api/programs/connection/stop";
  // the attack of issue 13: a cross-site page posting text/plain
  const attack = await call(app, stop, {
    method: "POST",
    headers: { origin: "http://evil.example", "content-type": "text/plain" },
    body: "x",
  });
  assert.equal(attack.status, 403);
  assert.match(
    attack.body.error,
    /cross-site requests are refused \(Origin: http:\/\/evil.example\)/,
  );
  for (const site of ["cross-site", "same-site"]) {
    const r = await call(app, stop, post({ "sec-fetch-site": site }));
    assert.equal(r.status, 403, site);
    assert.match(r.body.error, new RegExp(`Sec-Fetch-Site: ${site}`));
  }
  assert.equal((await call(app, stop, post({ origin: "null" }))).status, 403);
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
    const r = await call(app, stop, { method: "POST", headers: { "content-type": type } });
    assert.equal(r.status, 415, type);
  }
  assert.equal((await call(app, stop, { method: "POST" })).status, 415, "no content-type");
  // a request from this origin (Swagger UI) or from a non-browser client is fine
  const same = await call(app, stop, post({ origin: "http://localhost", host: "localhost" }));
  assert.equal(same.status, 200, JSON.stringify(same.body));
  assert.equal((await call(app, stop, post({ "sec-fetch-site": "same-origin" }))).status, 200);
  assert.equal((await call(app, stop, post({ "sec-fetch-site": "none" }))).status, 200);
  assert.equal((await call(app, stop, post({}, "{}"))).status, 200);
  // start and stop take no body fields
  const fields = await call(app, stop, post({}, '{"pid": 1}'));
  assert.equal(fields.status, 400);
  assert.match(fields.body.error, /stop takes no body fields/);
  assert.equal((await call(app, stop, post({}, "{pid"))).status, 400);
  // the summary POST takes an empty JSON body as {}
  const summary = await call(app, "/api/connection-summary", post());
  assert.equal(summary.status, 200, JSON.stringify(summary.body));
  access.close();
});

Deno.test("guard: without credentials, start and stop answer loopback clients only", async () => {
  const { app, access } = setup(undefined, { hostname: "0.0.0.0" });
  const remote = await call(app, "/api/programs/connection/stop", post(), REMOTE);
  assert.equal(remote.status, 403);
  assert.match(remote.body.error, /loopback clients only/);
  for (const address of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"]) {
    const env = { ...LOOPBACK, remoteAddress: address };
    assert.equal((await call(app, "/api/programs/connection/stop", post(), env)).status, 200);
  }
  // reading stays open to all (the warning in /health says so)
  const health = await call(app, "/health", {}, REMOTE);
  assert.equal(health.status, 200);
  assert.equal(health.body.security.control, "loopback clients");
  assert.equal(health.body.security.tls, false);
  assert.deepEqual(health.body.security.authentication, []);
  assert.equal(health.body.security.warnings.length, 2);
  assert.match(health.body.security.warnings[0], /beyond loopback, without TLS/);
  assert.match(health.body.security.warnings[1], /without credentials/);
  access.close();
});

Deno.test("guard: on loopback without a web config, /health has no warnings", async () => {
  const { app, access } = setup();
  const health = await call(app, "/health");
  assert.deepEqual(health.body.security, {
    listen: "127.0.0.1:9090",
    tls: false,
    client_auth_type: null,
    authentication: [],
    control: "loopback clients",
    web_config: null,
    reload_error: null,
    warnings: [],
  });
  access.close();
});

Deno.test("guard: bearer tokens: 401 without or with a wrong one, 403 for read on control", async () => {
  const yaml = [
    "bearer_tokens:",
    `  - sha256: ${sha256(READ_TOKEN)}`,
    `  - sha256: ${sha256(CONTROL_TOKEN)}`,
    "    scope: control",
    "",
  ].join("\n");
  const { app, access } = setup(yaml, { hostname: "0.0.0.0" });
  for (const auth of [undefined, "Bearer wrong", "Bearer", `Basic ${btoa("a:b")}`, "Token x"]) {
    const r = await call(app, "/health", auth ? { headers: { authorization: auth } } : {}, REMOTE);
    assert.equal(r.status, 401, String(auth));
    assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="ebpf-server"');
    assert.match(r.body.error, /^authentication required/);
  }
  const read = { authorization: `Bearer ${READ_TOKEN}` };
  const control = { authorization: `bearer ${CONTROL_TOKEN}` };
  assert.equal((await call(app, "/health", { headers: read }, REMOTE)).status, 200);
  assert.equal((await call(app, "/api/events", { headers: control }, REMOTE)).status, 200);
  const denied = await call(app, "/api/programs/connection/stop", post(read), REMOTE);
  assert.equal(denied.status, 403);
  assert.match(denied.body.error, /read scope/);
  // with credentials configured, a control-scope credential works from anywhere...
  assert.equal(
    (await call(app, "/api/programs/connection/stop", post(control), REMOTE)).status,
    200,
  );
  // ...and loopback without credentials gets nothing
  assert.equal((await call(app, "/api/programs/connection/stop", post())).status, 401);
  const health = await call(app, "/health", { headers: read }, REMOTE);
  assert.deepEqual(health.body.security.authentication, ["bearer"]);
  assert.equal(health.body.security.control, "control-scope credentials");
  assert.equal(health.body.security.warnings.length, 1, "no TLS is still worth a warning");
  access.close();
});

Deno.test("guard: basic auth with bcrypt hashes, scopes from basic_auth_scopes", async () => {
  const hash = bcrypt.hashSync("s3cret", 4).replace("$2b$", "$2y$");
  const yaml = [
    "basic_auth_users:",
    `  alice: ${hash}`,
    `  bob: ${hash}`,
    "basic_auth_scopes:",
    "  alice: control",
    "",
  ].join("\n");
  const { app, access } = setup(yaml);
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${btoa(`${user}:${password}`)}`,
  });
  for (
    const headers of [{}, basic("alice", "wrong"), basic("carol", "s3cret"), {
      authorization: "Basic !!",
    }]
  ) {
    const r = await call(app, "/health", { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get("www-authenticate"), 'Basic realm="ebpf-server"');
  }
  assert.equal((await call(app, "/health", { headers: basic("bob", "s3cret") })).status, 200);
  // cached: the second check of the same password is not another bcrypt run
  assert.equal((await call(app, "/health", { headers: basic("bob", "s3cret") })).status, 200);
  const bob = await call(app, "/api/programs/connection/start", post(basic("bob", "s3cret")));
  assert.equal(bob.status, 403);
  const alice = await call(app, "/api/programs/connection/stop", post(basic("alice", "s3cret")));
  assert.equal(alice.status, 200);
  access.close();
});

Deno.test("guard: rate_limit answers 429 beyond the burst", async () => {
  const { app, access } = setup("rate_limit:\n  interval: 1h\n  burst: 3\n");
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await call(app, "/health")).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  access.close();
});

Deno.test("query parameters on routes that take none are a 400", async () => {
  const { app, access } = setup();
  const cases: [string, RequestInit?][] = [
    ["/api/programs/connection/stop?pid=abc", post()],
    ["/api/programs/connection/start?x=1", post()],
    ["/health?verbose=1"],
    ["/api/programs?x"],
    ["/metrics?name=x"],
    ["/api/drop-reasons?all=1"],
    ["/openapi.json?v=2"],
    ["/docs?url=http://evil.example/api.json"],
    ["/api/programs/tcp_life/open?pid=1"],
    ["/api/connection-summary?pid=1", post()],
  ];
  for (const [path, init] of cases) {
    const r = await call(app, path, init);
    assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
    const name = new URL(path, "http://x").searchParams.keys().next().value;
    assert.equal(r.body.issues[0].field, name, path);
  }
  // routes with parameters keep their own validation; an empty query string is no parameter
  assert.equal((await call(app, "/health?")).status, 200);
  assert.equal((await call(app, "/api/events?limit=1")).status, 200);
  access.close();
});

Deno.test("/docs/constructor and other Object.prototype names are a 404", async () => {
  const { app, access } = setup();
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    const r = await call(app, `/docs/${name}`);
    assert.equal(r.status, 404, name);
  }
  access.close();
});

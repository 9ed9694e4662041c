import assert from "node:assert/strict";
import { makePki, type TestPki } from "./_tls_testing.ts";
import { loadWebConfig, parseWebConfig, WebConfigError } from "./web_config.ts";

const ALICE = "$2y$10$SdYiNIjf4MvarhTUC/ziFesfNBDsBqBnN23rirF0KEiGLmhNiWnHi";
const TOKEN_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"

/** Asserts the text is refused with a message naming `line` and matching `what`. */
function refused(text: string, line: number, what: RegExp, path = "/etc/web.yml"): void {
  assert.throws(
    () => parseWebConfig(text, { path, readFile: (p) => Deno.readTextFileSync(p) }),
    (err: unknown) => {
      assert.ok(err instanceof WebConfigError, `expected a WebConfigError, got ${err}`);
      assert.ok(
        err.message.startsWith(`web config ${path}:${line}: `),
        `'${err.message}' should name line ${line}`,
      );
      assert.match(err.message, what);
      return true;
    },
  );
}

Deno.test("web config: an empty file is plain HTTP without credentials", () => {
  for (const text of ["", "---\n", "# nothing\n"]) {
    const c = parseWebConfig(text, { path: "w.yml" });
    assert.equal(c.tls, null);
    assert.equal(c.users.size, 0);
    assert.equal(c.tokens.size, 0);
    assert.equal(c.rateLimit, null);
  }
});

Deno.test("web config: users, scopes, tokens, headers and rate limit", () => {
  const c = parseWebConfig(
    [
      "basic_auth_users:",
      `  alice: ${ALICE}`,
      `  bob: ${ALICE}`,
      "basic_auth_scopes:",
      "  alice: control",
      "bearer_tokens:",
      `  - sha256: ${TOKEN_SHA.toUpperCase()}`,
      "    scope: control",
      `  - sha256: ${"ab".repeat(32)}`,
      "http_server_config:",
      "  http2: false",
      "  headers:",
      "    X-Frame-Options: sameorigin",
      "rate_limit:",
      "  interval: 250ms",
      "  burst: 20",
      "",
    ].join("\n"),
    { path: "w.yml" },
  );
  assert.deepEqual([...c.users].map(([n, u]) => [n, u.scope]), [["alice", "control"], [
    "bob",
    "read",
  ]]);
  assert.deepEqual([...c.tokens], [[TOKEN_SHA, "control"], ["ab".repeat(32), "read"]]);
  assert.deepEqual(c.headers, { "X-Frame-Options": "sameorigin" });
  assert.deepEqual(c.rateLimit, { intervalMs: 250, burst: 20 });
});

Deno.test("web config: every problem names its line", () => {
  refused("foo: 1\n", 1, /unknown field 'foo'/);
  refused("basic_auth_users:\n  alice: secret\n", 2, /must be a bcrypt hash/);
  refused(`basic_auth_users:\n  "a:b": ${ALICE}\n`, 2, /must not contain ':'/);
  refused("basic_auth_scopes:\n  carol: control\n", 2, /'carol' is not in basic_auth_users/);
  refused(
    `basic_auth_users:\n  alice: ${ALICE}\nbasic_auth_scopes:\n  alice: admin\n`,
    4,
    /read or control/,
  );
  refused("bearer_tokens:\n  - sha256: abc\n", 2, /64 hex digits/);
  refused(
    `bearer_tokens:\n  - sha256: ${TOKEN_SHA}\n  - sha256: ${TOKEN_SHA}\n`,
    3,
    /listed twice/,
  );
  refused(`bearer_tokens:\n  - sha256: ${TOKEN_SHA}\n    scope: all\n`, 3, /read or control/);
  refused(`bearer_tokens:\n  - token: ${TOKEN_SHA}\n`, 2, /unknown field 'token'/);
  refused("bearer_tokens: yes\n", 1, /must be a list/);
  refused("rate_limit:\n  interval: soon\n  burst: 1\n", 2, /must be a duration/);
  refused("rate_limit:\n  interval: 1s\n", 1, /burst must be at least 1/);
  refused("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", 3, /deny, sameorigin/);
  refused(
    "http_server_config:\n  headers:\n    X-Powered-By: me\n",
    3,
    /unknown field 'X-Powered-By'/,
  );
  refused("basic_auth_users:\n  alice: x\n  alice: y\n", 3, /not valid YAML/);
  refused("a: [\n", 2, /not valid YAML/); // found where the text ends
  refused("- just\n- a list\n", 1, /must be a YAML mapping/);
  refused(
    "tls_server_config:\n  cert_file: /nonexistent/server.crt\n  key_file: k\n",
    2,
    /cannot read \/nonexistent\/server.crt/,
  );
  refused("tls_server_config:\n  key_file: k.key\n", 1, /needs cert_file/);
  refused("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", 2, /not supported/);
});

let pki: TestPki | undefined;
async function certificates(): Promise<TestPki> {
  return pki ??= await makePki();
}

Deno.test("web config: TLS files are read relative to the config, and checked", async () => {
  const { dir } = await certificates();
  const path = `${dir}/web.yml`;
  await Deno.writeTextFile(
    path,
    [
      "tls_server_config:",
      "  cert_file: server.crt",
      "  key_file: server.key",
      "  client_ca_file: ca.crt",
      "  client_auth_type: RequireAndVerifyClientCert",
      "  min_version: TLS13",
      "  client_allowed_sans: [scraper.test]",
      "",
    ].join("\n"),
  );
  const c = loadWebConfig(path);
  assert.ok(c.tls);
  assert.equal(c.tls.clientAuth, "RequireAndVerifyClientCert");
  assert.equal(c.tls.minVersion, "TLS13");
  assert.equal(c.tls.maxVersion, "TLS13");
  assert.deepEqual(c.tls.allowedSans, ["scraper.test"]);
  assert.match(c.tls.cert, /BEGIN CERTIFICATE/);
  assert.deepEqual(c.files, [path, `${dir}/server.crt`, `${dir}/server.key`, `${dir}/ca.crt`]);

  const tls = (lines: string[]) =>
    ["tls_server_config:", ...lines.map((l) => `  ${l}`), ""].join("\n");
  const at = `${dir}/bad.yml`;
  refused(tls(["cert_file: server.crt", "key_file: client.key"]), 3, /does not belong/, at);
  refused(tls(["cert_file: server.key", "key_file: server.key"]), 2, /not a PEM certificate/, at);
  refused(tls(["cert_file: server.crt", "key_file: server.crt"]), 3, /not a PEM key/, at);
  refused(
    tls(["cert_file: server.crt", "key_file: server.key", "client_ca_file: ca.crt"]),
    4,
    /without a client_auth_type/,
    at,
  );
  refused(
    tls([
      "cert_file: server.crt",
      "key_file: server.key",
      "client_auth_type: RequireAndVerifyClientCert",
    ]),
    4,
    /needs client_ca_file/,
    at,
  );
  refused(
    tls(["cert_file: server.crt", "key_file: server.key", "client_auth_type: Maybe"]),
    4,
    /must be one of NoClientCert/,
    at,
  );
  refused(
    tls(["cert_file: server.crt", "key_file: server.key", "min_version: TLS14"]),
    4,
    /TLS10, TLS11, TLS12, TLS13/,
    at,
  );
  refused(
    tls([
      "cert_file: server.crt",
      "key_file: server.key",
      "min_version: TLS13",
      "max_version: TLS12",
    ]),
    5,
    /below min_version/,
    at,
  );
  refused(
    tls(["cert_file: server.crt", "key_file: server.key", "client_allowed_sans: [x]"]),
    4,
    /needs client_auth_type/,
    at,
  );
  refused(tls(["cert_file: server.crt", "cert: x", "key_file: server.key"]), 3, /not both/, at);
  // the toolkit's old name of RequireAnyClientCert
  const old = parseWebConfig(
    tls(["cert_file: server.crt", "key_file: server.key", "client_auth_type: RequireClientCert"]),
    { path: at },
  );
  assert.equal(old.tls?.clientAuth, "RequireAnyClientCert");
});

Deno.test("web config: a missing file is refused", () => {
  assert.throws(
    () => loadWebConfig("/nonexistent/web.yml"),
    /web config \/nonexistent\/web.yml: cannot read it/,
  );
});

globalThis.addEventListener("unload", () => {
  if (pki) Deno.removeSync(pki.dir, { recursive: true });
});

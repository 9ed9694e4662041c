/**
 * `--web.config.file`: the Prometheus exporter-toolkit web configuration (the file Prometheus,
 * node_exporter and Alertmanager read), so Prometheus' own `tls_config`, `basic_auth` and
 * `authorization` work against this server unchanged; plus, beyond the toolkit, bearer tokens
 * stored as SHA-256 hashes and a scope per credential (`read`, or `control` to start and stop
 * programs).
 *
 * ```yaml
 * tls_server_config:
 *   cert_file: server.crt          # relative paths are relative to this file
 *   key_file: server.key
 *   client_ca_file: clients.crt    # with client_auth_type: RequireAndVerifyClientCert
 *   min_version: TLS12
 * basic_auth_users:
 *   alice: $2y$10$...              # bcrypt hashes
 * basic_auth_scopes:
 *   alice: control                 # default: read
 * bearer_tokens:
 *   - sha256: 9f86d0...            # hex of the token's SHA-256
 *     scope: read
 * ```
 *
 * Like the toolkit, unknown fields are errors (`yaml.UnmarshalStrict`), and a problem names the
 * line it is on. Toolkit fields this server cannot honour (cipher and curve choices: the TLS
 * library picks its own) are refused rather than ignored.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from "yaml";

/** What a credential may do: `control` (start and stop programs) implies `read`. */
export type Scope = "read" | "control";
export const SCOPES: readonly Scope[] = ["read", "control"];

/** Go's crypto/tls client authentication policies, as the toolkit names them. */
export const CLIENT_AUTH_TYPES = [
  "NoClientCert",
  "RequestClientCert",
  "RequireAnyClientCert",
  "VerifyClientCertIfGiven",
  "RequireAndVerifyClientCert",
] as const;
export type ClientAuthType = typeof CLIENT_AUTH_TYPES[number];

/** Node's names of the TLS versions the toolkit's `min_version` / `max_version` take. */
const TLS_VERSIONS = {
  TLS10: "TLSv1",
  TLS11: "TLSv1.1",
  TLS12: "TLSv1.2",
  TLS13: "TLSv1.3",
} as const;
export type TlsVersionName = keyof typeof TLS_VERSIONS;

/** The TLS side of a web config, with the certificate, key and client CAs read. */
export interface TlsSettings {
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
  /** PEM client CA certificates, or null. */
  ca: string | null;
  clientAuth: ClientAuthType;
  minVersion: TlsVersionName;
  maxVersion: TlsVersionName;
  /** A client certificate must carry one of these subject alternative names; null: any. */
  allowedSans: string[] | null;
}

/** One basic-auth user. */
export interface BasicUser {
  /** bcrypt hash of the password. */
  hash: string;
  scope: Scope;
}

/** A parsed, checked web configuration. */
export interface WebConfig {
  /** The file it was read from. */
  path: string;
  /** Null: plain HTTP. */
  tls: TlsSettings | null;
  users: ReadonlyMap<string, BasicUser>;
  /** Bearer tokens by the lowercase hex of their SHA-256. */
  tokens: ReadonlyMap<string, Scope>;
  /** Extra response headers (`http_server_config.headers`). */
  headers: Readonly<Record<string, string>>;
  /** Token bucket over all requests (`rate_limit`), or null. */
  rateLimit: { intervalMs: number; burst: number } | null;
  /** Every file read: a change to any of them means a reload. */
  files: string[];
}

/** Whether a web config asks for credentials (basic-auth users or bearer tokens). */
export function hasCredentials(config: WebConfig | null): boolean {
  return config !== null && (config.users.size > 0 || config.tokens.size > 0);
}

/** A web config that cannot be used; the message names the file and line. */
export class WebConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebConfigError";
  }
}

/** Headers the toolkit lets a config set, with the values it accepts (null: any). */
const EXTRA_HEADERS: Record<string, string[] | null> = {
  "Strict-Transport-Security": null,
  "X-Content-Type-Options": ["nosniff"],
  "X-Frame-Options": ["deny", "sameorigin"],
  "X-XSS-Protection": null,
  "Content-Security-Policy": null,
};

const TOP_KEYS = [
  "tls_server_config",
  "http_server_config",
  "basic_auth_users",
  "basic_auth_scopes",
  "bearer_tokens",
  "rate_limit",
];
const TLS_KEYS = [
  "cert_file",
  "key_file",
  "cert",
  "key",
  "client_ca_file",
  "client_ca",
  "client_auth_type",
  "min_version",
  "max_version",
  "client_allowed_sans",
];
/** Toolkit fields that are refused with a reason, not ignored. */
const REFUSED_TLS_KEYS: Record<string, string> = {
  cipher_suites: "the TLS library (rustls) uses its own safe cipher suites; remove it",
  curve_preferences: "the TLS library (rustls) uses its own curves; remove it",
  prefer_server_cipher_suites: "the TLS library (rustls) picks cipher suites itself; remove it",
};

/** Reads and checks a web config file. Throws {@linkcode WebConfigError}. */
export function loadWebConfig(path: string): WebConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new WebConfigError(`web config ${path}: cannot read it: ${(err as Error).message}`);
  }
  return parseWebConfig(text, { path });
}

/**
 * Checks the text of a web config; files it names are read relative to `path`'s directory
 * (with `readFile`, by default from disk). Throws {@linkcode WebConfigError}.
 *
 * @example
 * ```ts
 * const config = parseWebConfig("basic_auth_users:\n  alice: $2y$10$...\n", { path: "web.yml" });
 * ```
 */
export function parseWebConfig(
  text: string,
  options: { path: string; readFile?: (path: string) => string },
): WebConfig {
  const path = options.path;
  const readFile = options.readFile ?? ((p: string) => Deno.readTextFileSync(p));
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (node: Node | null | undefined, fallback = 1) => {
    const offset = node?.range?.[0];
    return offset === undefined ? fallback : lines.linePos(offset).line;
  };
  const fail = (line: number, message: string): never => {
    throw new WebConfigError(`web config ${path}:${line}: ${message}`);
  };
  for (const error of doc.errors) {
    const line = lines.linePos(error.pos[0]).line;
    fail(line, `not valid YAML: ${error.message.split("\n")[0]}`);
  }

  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
  const files = [path];
  const read = (node: Node, what: string): string => {
    const name = stringValue(node, what);
    const file = name.startsWith("/") ? name : dir + name;
    files.push(file);
    try {
      return readFile(file);
    } catch (err) {
      return fail(lineOf(node), `${what}: cannot read ${file}: ${(err as Error).message}`);
    }
  };

  const stringValue = (node: Node | null, what: string): string => {
    if (!isScalar(node) || typeof node.value !== "string" || node.value === "") {
      return fail(lineOf(node), `${what} must be a non-empty string`);
    }
    return node.value;
  };

  /** The pairs of a mapping, each key checked against `known`. */
  const mapping = (
    node: Node | null,
    what: string,
    known: readonly string[] | null,
    refused: Record<string, string> = {},
  ): { key: string; keyNode: Node; value: Node | null }[] => {
    if (node === null || (isScalar(node) && node.value === null)) return []; // `key:` with nothing
    if (!isMap(node)) return fail(lineOf(node), `${what} must be a mapping`);
    return (node as YAMLMap<Node, Node | null>).items.map((pair) => {
      const keyNode = pair.key;
      if (!isScalar(keyNode) || typeof keyNode.value !== "string") {
        return fail(lineOf(keyNode, lineOf(node)), `${what}: every key must be a string`);
      }
      const key = keyNode.value;
      if (refused[key]) fail(lineOf(keyNode), `${what}.${key} is not supported: ${refused[key]}`);
      if (known && !known.includes(key)) {
        fail(
          lineOf(keyNode),
          `unknown field '${key}' in ${what}; known: ${known.join(", ")}`,
        );
      }
      return { key, keyNode, value: pair.value ?? null };
    });
  };

  const root = doc.contents as Node | null;
  if (root !== null && !isMap(root) && !(isScalar(root) && root.value === null)) {
    fail(
      lineOf(root),
      "the file must be a YAML mapping (tls_server_config:, basic_auth_users:, ...)",
    );
  }
  const top = new Map(mapping(root, "the web config", TOP_KEYS).map((p) => [p.key, p]));

  // tls_server_config
  let tls: TlsSettings | null = null;
  const tlsPair = top.get("tls_server_config");
  if (tlsPair) {
    const fields = new Map(
      mapping(tlsPair.value, "tls_server_config", TLS_KEYS, REFUSED_TLS_KEYS).map((
        p,
      ) => [p.key, p]),
    );
    if (fields.size > 0) tls = tlsSettings(fields, tlsPair.keyNode);
  }

  function tlsSettings(
    fields: Map<string, { keyNode: Node; value: Node | null }>,
    at: Node,
  ): TlsSettings {
    const where = (k: string) => fields.get(k)?.value ?? fields.get(k)?.keyNode ?? at;
    const pem = (fileKey: string, inlineKey: string, what: string, required: boolean) => {
      const file = fields.get(fileKey), inline = fields.get(inlineKey);
      if (file && inline) {
        fail(lineOf(inline.keyNode), `give ${fileKey} or ${inlineKey}, not both`);
      }
      if (file) {
        return {
          text: read(file.value ?? file.keyNode, `tls_server_config.${fileKey}`),
          node: where(fileKey),
        };
      }
      if (inline) {
        return {
          text: stringValue(inline.value, `tls_server_config.${inlineKey}`),
          node: where(inlineKey),
        };
      }
      if (required) {
        fail(lineOf(at), `tls_server_config needs ${fileKey} (or ${inlineKey}) for the ${what}`);
      }
      return null;
    };
    const cert = pem("cert_file", "cert", "server certificate", true)!;
    const key = pem("key_file", "key", "private key", true)!;
    const ca = pem("client_ca_file", "client_ca", "client CAs", false);

    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(cert.text);
    } catch (err) {
      return fail(
        lineOf(cert.node),
        `the server certificate is not a PEM certificate: ${(err as Error).message}`,
      );
    }
    let privateKey;
    try {
      privateKey = createPrivateKey(key.text);
    } catch (err) {
      return fail(lineOf(key.node), `the private key is not a PEM key: ${(err as Error).message}`);
    }
    if (!leaf.checkPrivateKey(privateKey)) {
      fail(lineOf(key.node), "the private key does not belong to the server certificate");
    }
    if (ca) {
      const blocks =
        ca.text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      if (blocks.length === 0) fail(lineOf(ca.node), "the client CA file holds no PEM certificate");
      for (const block of blocks) {
        try {
          new X509Certificate(block);
        } catch (err) {
          fail(
            lineOf(ca.node),
            `a client CA certificate does not parse: ${(err as Error).message}`,
          );
        }
      }
    }

    let clientAuth: ClientAuthType = "NoClientCert";
    const authField = fields.get("client_auth_type");
    if (authField) {
      let text = stringValue(authField.value, "tls_server_config.client_auth_type");
      if (text === "RequireClientCert") text = "RequireAnyClientCert"; // the toolkit's old name
      if (!CLIENT_AUTH_TYPES.includes(text as ClientAuthType)) {
        fail(
          lineOf(authField.value),
          `tls_server_config.client_auth_type '${text}' must be one of ${
            CLIENT_AUTH_TYPES.join(", ")
          }`,
        );
      }
      clientAuth = text as ClientAuthType;
    }
    if (ca && clientAuth === "NoClientCert") {
      fail(
        lineOf(ca.node),
        "client CAs are configured without a client_auth_type (use RequireAndVerifyClientCert)",
      );
    }
    if (
      !ca &&
      (clientAuth === "VerifyClientCertIfGiven" || clientAuth === "RequireAndVerifyClientCert")
    ) {
      fail(
        lineOf(where("client_auth_type")),
        `client_auth_type ${clientAuth} needs client_ca_file`,
      );
    }

    const version = (k: "min_version" | "max_version", fallback: TlsVersionName) => {
      const field = fields.get(k);
      if (!field) return fallback;
      const text = stringValue(field.value, `tls_server_config.${k}`);
      if (!(text in TLS_VERSIONS)) {
        fail(
          lineOf(field.value),
          `tls_server_config.${k} '${text}' must be one of ${Object.keys(TLS_VERSIONS).join(", ")}`,
        );
      }
      return text as TlsVersionName;
    };
    const minVersion = version("min_version", "TLS12");
    const maxVersion = version("max_version", "TLS13");
    if (minVersion > maxVersion) {
      fail(
        lineOf(where("max_version")),
        `max_version ${maxVersion} is below min_version ${minVersion}`,
      );
    }

    let allowedSans: string[] | null = null;
    const sans = fields.get("client_allowed_sans");
    if (sans) {
      if (!isSeq(sans.value)) {
        fail(lineOf(sans.value ?? sans.keyNode), "client_allowed_sans must be a list");
      }
      allowedSans = (sans.value as unknown as { items: Node[] }).items.map((n) =>
        stringValue(n, "client_allowed_sans entry")
      );
      if (clientAuth !== "RequireAnyClientCert" && clientAuth !== "RequireAndVerifyClientCert") {
        fail(
          lineOf(sans.keyNode),
          "client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
        );
      }
    }
    return {
      cert: cert.text,
      key: key.text,
      ca: ca?.text ?? null,
      clientAuth,
      minVersion,
      maxVersion,
      allowedSans,
    };
  }

  // http_server_config
  const headers: Record<string, string> = {};
  const httpPair = top.get("http_server_config");
  if (httpPair) {
    for (const field of mapping(httpPair.value, "http_server_config", ["http2", "headers"])) {
      if (field.key === "http2") {
        if (!isScalar(field.value) || typeof field.value.value !== "boolean") {
          fail(
            lineOf(field.value ?? field.keyNode),
            "http_server_config.http2 must be true or false",
          );
        }
        // accepted for compatibility: this server speaks HTTP/1.1 (over TLS too) either way
        continue;
      }
      for (
        const h of mapping(field.value, "http_server_config.headers", Object.keys(EXTRA_HEADERS))
      ) {
        const value = stringValue(h.value, `header ${h.key}`);
        const allowed = EXTRA_HEADERS[h.key];
        if (allowed && !allowed.includes(value)) {
          fail(
            lineOf(h.value),
            `header ${h.key} must be one of ${allowed.join(", ")}, not '${value}'`,
          );
        }
        headers[h.key] = value;
      }
    }
  }

  // basic_auth_users and basic_auth_scopes
  const users = new Map<string, BasicUser>();
  const usersPair = top.get("basic_auth_users");
  if (usersPair) {
    for (const u of mapping(usersPair.value, "basic_auth_users", null)) {
      if (u.key.includes(":")) fail(lineOf(u.keyNode), `user name '${u.key}' must not contain ':'`);
      const hash = stringValue(u.value, `the password hash of '${u.key}'`);
      if (!/^\$2[abxy]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/.test(hash)) {
        fail(
          lineOf(u.value),
          `the password of '${u.key}' must be a bcrypt hash ($2y$10$... from htpasswd -nBC 10 "")`,
        );
      }
      users.set(u.key, { hash, scope: "read" });
    }
  }
  const scopesPair = top.get("basic_auth_scopes");
  if (scopesPair) {
    for (const s of mapping(scopesPair.value, "basic_auth_scopes", null)) {
      const user = users.get(s.key);
      if (!user) {
        fail(lineOf(s.keyNode), `basic_auth_scopes: '${s.key}' is not in basic_auth_users`);
      }
      user!.scope = scope(s.value, `the scope of '${s.key}'`);
    }
  }

  function scope(node: Node | null, what: string): Scope {
    const text = stringValue(node, what);
    if (!SCOPES.includes(text as Scope)) {
      fail(lineOf(node), `${what} '${text}' must be read or control`);
    }
    return text as Scope;
  }

  // bearer_tokens
  const tokens = new Map<string, Scope>();
  const tokensPair = top.get("bearer_tokens");
  if (tokensPair && !(isScalar(tokensPair.value) && tokensPair.value.value === null)) {
    if (!isSeq(tokensPair.value)) {
      fail(
        lineOf(tokensPair.value ?? tokensPair.keyNode),
        "bearer_tokens must be a list of {sha256, scope}",
      );
    }
    for (const item of (tokensPair.value as unknown as { items: Node[] }).items) {
      const fields = new Map(
        mapping(item, "a bearer token", ["sha256", "scope"]).map((p) => [p.key, p]),
      );
      const hashField = fields.get("sha256");
      if (!hashField) {
        fail(lineOf(item), "a bearer token needs sha256 (the hex SHA-256 of the token)");
      }
      const hex = stringValue(hashField!.value, "sha256");
      if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
        fail(
          lineOf(hashField!.value),
          "sha256 must be 64 hex digits: the SHA-256 of the token (printf %s TOKEN | sha256sum)",
        );
      }
      const key = hex.toLowerCase();
      if (tokens.has(key)) fail(lineOf(hashField!.value), "this token is listed twice");
      const scopeField = fields.get("scope");
      tokens.set(key, scopeField ? scope(scopeField.value, "scope") : "read");
    }
  }

  // rate_limit
  let rateLimit: WebConfig["rateLimit"] = null;
  const ratePair = top.get("rate_limit");
  if (ratePair) {
    const fields = new Map(
      mapping(ratePair.value, "rate_limit", ["interval", "burst"]).map((p) => [p.key, p]),
    );
    const interval = fields.get("interval");
    const burst = fields.get("burst");
    const intervalMs = interval ? goDuration(interval.value, fail, lineOf) : 0;
    let burstN = 0;
    if (burst) {
      if (
        !isScalar(burst.value) || !Number.isInteger(burst.value.value) ||
        (burst.value.value as number) < 0
      ) {
        fail(lineOf(burst.value ?? burst.keyNode), "rate_limit.burst must be a whole number");
      }
      burstN = burst.value!.toJSON() as number;
    }
    if (intervalMs > 0) {
      if (burstN < 1) {
        fail(lineOf(ratePair.keyNode), "rate_limit.burst must be at least 1 with an interval");
      }
      rateLimit = { intervalMs, burst: burstN };
    }
  }

  return { path, tls, users, tokens, headers, rateLimit, files };
}

/** A Go `time.Duration` text (`1s`, `250ms`, `1m30s`) in ms. */
function goDuration(
  node: Node | null,
  fail: (line: number, message: string) => never,
  lineOf: (node: Node | null) => number,
): number {
  const text = isScalar(node) ? String(node.value) : "";
  if (text === "0") return 0;
  const unit: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    "µs": 1e-3,
    ms: 1,
    s: 1e3,
    m: 6e4,
    h: 3.6e6,
  };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    fail(lineOf(node), `rate_limit.interval '${text}' must be a duration such as 1s or 250ms`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]], 0);
}

/** Node's `minVersion` / `maxVersion` name of a toolkit TLS version. */
export function nodeTlsVersion(
  version: TlsVersionName,
): "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3" {
  return TLS_VERSIONS[version];
}

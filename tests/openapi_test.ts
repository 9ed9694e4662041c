/**
 * The OpenAPI document as a client generator reads it: every operation named (`operationId`,
 * unique), in one described tag, the compatibility paths all under `compatibility`; and
 * `redocly lint` with its recommended rules finds no error in it. The linter is the
 * `@redocly/cli` pinned in deno.json (installed from deno.lock, nothing fetched at run time).
 *
 * @module
 */

import assert from "node:assert/strict";
import { COMPAT_TAG } from "../src/http/routes_compat.ts";
import { serverDocument } from "../scripts/openapi.ts";
import { ROOT_DIR, runCommand } from "./_server.ts";

interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"] as const;

function operations(): { method: string; path: string; op: Operation }[] {
  const doc = serverDocument();
  const out = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = (item as Record<string, Operation | undefined>)[method];
      if (op) out.push({ method, path, op });
    }
  }
  return out;
}

/** The paths of the project this grew from. */
const ORIGINAL_PATHS = [
  "/",
  "/api/connection-summary",
  "/api/connections/summary",
  "/api/list-connections",
  "/api/packet-drop-summary",
  "/api/list-packet-drops",
];

Deno.test("openapi: every operation has a unique operationId and one described tag", () => {
  const ops = operations();
  assert.ok(ops.length >= 26, `only ${ops.length} operations`);
  const ids = new Map<string, string>();
  const declared = new Map((serverDocument().tags ?? []).map((t) => [t.name, t.description]));
  for (const { method, path, op } of ops) {
    const where = `${method.toUpperCase()} ${path}`;
    assert.match(op.operationId ?? "", /^[a-z][A-Za-z0-9]+$/, `${where}: operationId`);
    const other = ids.get(op.operationId!);
    assert.equal(other, undefined, `${where} and ${other} share ${op.operationId}`);
    ids.set(op.operationId!, where);
    assert.equal(op.tags?.length, 1, `${where}: one tag, got ${op.tags}`);
    assert.ok(declared.get(op.tags![0]), `${where}: tag ${op.tags![0]} is declared and described`);
    assert.ok(op.summary, `${where}: a summary`);
  }
});

Deno.test("openapi: the original project's paths are all under one tag, and only they", () => {
  for (const { method, path, op } of operations()) {
    const original = ORIGINAL_PATHS.includes(path);
    assert.equal(
      op.tags?.[0] === COMPAT_TAG,
      original,
      `${method.toUpperCase()} ${path}: tags ${op.tags}`,
    );
  }
});

/** The pinned linter, from deno.json's imports (so the version is written once). */
async function redocly(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT_DIR}deno.json`));
  const specifier = config.imports["@redocly/cli"];
  assert.match(specifier, /^npm:@redocly\/cli@\d+\.\d+\.\d+$/, "pinned to one version");
  return specifier;
}

/** Rules whose warnings are known and true of this API. */
const ACCEPTED_WARNINGS = new Set([
  // no license is declared for the project
  "info-license",
  // routes without input (/health, /metrics, ...) have no 4xx answer
  "operation-4xx-response",
]);

Deno.test("openapi: the web config's credentials are its security schemes, none needed without one", () => {
  const doc = serverDocument();
  const schemes = doc.components?.securitySchemes ?? {};
  assert.deepEqual(
    Object.fromEntries(
      Object.entries(schemes).map((
        [k, v],
      ) => [k, [(v as { type: string }).type, (v as { scheme: string }).scheme]]),
    ),
    { basicAuth: ["http", "basic"], bearerAuth: ["http", "bearer"] },
  );
  // {} first: without a web config (or with TLS only) no credential is asked
  assert.deepEqual(doc.security, [{}, { basicAuth: [] }, { bearerAuth: [] }]);
});

Deno.test("openapi: redocly lint (recommended rules) finds no error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ebpf-server-openapi-" });
  try {
    const file = `${dir}/openapi.json`;
    await Deno.writeTextFile(file, JSON.stringify(serverDocument(), null, 2));
    const out = await runCommand(Deno.execPath(), [
      "run",
      "--allow-all",
      "--frozen",
      await redocly(),
      "lint",
      "--format=json",
      file,
    ], {
      // no telemetry, no update check: the lint needs no network
      env: { REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
      timeoutMs: 120_000,
    });
    let report: {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: unknown[] }[];
    };
    try {
      report = JSON.parse(out.stdout);
    } catch {
      throw new Error(`redocly printed no report (exit ${out.code}):\n${out.stdout}${out.stderr}`);
    }
    const errors = report.problems.filter((p) => p.severity === "error");
    assert.deepEqual(errors, [], "no errors");
    assert.equal(report.totals.errors, 0);
    assert.equal(out.code, 0, out.stderr);
    const unexpected = report.problems.filter((p) => !ACCEPTED_WARNINGS.has(p.ruleId));
    assert.deepEqual(unexpected, [], "warnings of other rules");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

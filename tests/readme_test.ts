/**
 * The README's examples, run: the shell blocks of "Asking it questions" and "Kept from the project
 * this grew from" are run line by line against a real server (port 9090 replaced by its port),
 * every answer must be JSON without an `error`, and every JSON example after a shell block must
 * be what one of its commands printed: an event example must equal an event the server gave,
 * field for field, except the fields that differ from run to run (pids, times, latencies,
 * ephemeral ports, kernel addresses, cgroup and namespace ids); an answer example must have the
 * same fields with the same JSON types, and its events must match as above.
 *
 * Other processes of the host make connections too: a query with a `limit` is also asked with a
 * large one, so the example's event is found even when others' are newer.
 *
 * @module
 */

import assert from "node:assert/strict";
import { canRunPrivileged, privileged, ROOT_DIR, runCommand, startServer } from "./_server.ts";

/** The sections whose examples run. */
const SECTIONS = ["Asking it questions", "Kept from the project this grew from"];

/** Fields whose values differ from run to run; their JSON types must still agree. */
const VARYING = new Set([
  "wall_time",
  "timestamp_ms",
  "time",
  "pid",
  "tid",
  "cgroup_id",
  "latency_ns",
  "start_time",
  "duration_ms",
  "srtt_us",
  "local_port",
  "local",
  "source_port",
  "source",
  "location",
  "netns",
  "context_pid",
  // a DNS query's send time, message id and source port
  "query_time",
  "id",
  "client_port",
  // numbers of drop reasons differ between kernels; the names are compared
  "reason_code",
  "drop_reason_code",
]);

const EVENT_TYPES = new Set(["cgroup", "connection", "packet_drop", "tcp_life", "dns"]);

interface Block {
  lang: string;
  text: string;
  /** line in README.md */
  line: number;
}

/** The fenced blocks of the sections named in SECTIONS, in order. */
function readmeBlocks(readme: string): { section: string; blocks: Block[] }[] {
  const lines = readme.split("\n");
  const out: { section: string; blocks: Block[] }[] = [];
  let current: { section: string; blocks: Block[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#{2,3} (.+)$/.exec(lines[i]);
    if (heading) {
      current = SECTIONS.includes(heading[1]) ? { section: heading[1], blocks: [] } : undefined;
      if (current) out.push(current);
      continue;
    }
    const fence = /^```(\w+)$/.exec(lines[i]);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    current?.blocks.push({ lang: fence[1], text: body.join("\n"), line: start + 1 });
  }
  return out;
}

/** The commands of a shell block: continuation lines joined, comments and blank lines left out. */
function commands(text: string): string[] {
  return text.replace(/\\\n\s*/g, " ").split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

// deno-lint-ignore no-explicit-any
type Json = any;

function typeOf(v: Json): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function isEvent(v: Json): boolean {
  return typeOf(v) === "object" && EVENT_TYPES.has(v.type);
}

/** Every event inside an answer. */
function eventsIn(v: Json, out: Json[] = []): Json[] {
  if (isEvent(v)) out.push(v);
  else if (typeOf(v) === "array") { for (const x of v) eventsIn(x, out); }
  else if (typeOf(v) === "object") { for (const x of Object.values(v)) eventsIn(x, out); }
  return out;
}

/** Why `actual` is not the event `example` shows, or null when it is. */
function eventDiff(example: Json, actual: Json): string | null {
  const keys = Object.keys(example).sort(), got = Object.keys(actual).sort();
  if (keys.join() !== got.join()) {
    const missing = keys.filter((k) => !got.includes(k));
    const extra = got.filter((k) => !keys.includes(k));
    return `fields differ: the example has ${missing.join(", ") || "nothing more"}, ` +
      `the server also gives ${extra.join(", ") || "nothing more"}`;
  }
  for (const key of keys) {
    const a = example[key], b = actual[key];
    if (typeOf(a) !== typeOf(b)) return `${key}: ${typeOf(a)} in the example, ${typeOf(b)} given`;
    if (VARYING.has(key)) continue;
    if (key === "location_symbol" && typeof a === "string") {
      // the function is the kernel's; its offset depends on the build
      if (a.split("+")[0] !== b.split("+")[0]) return `${key}: ${a} vs ${b}`;
      continue;
    }
    if (key === "connect" && a !== null) {
      const diff = eventDiff({ ...a, type: "connection" }, { ...b, type: "connection" });
      if (diff) return `connect.${diff}`;
      continue;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      return `${key}: ${JSON.stringify(a)} in the example, ${JSON.stringify(b)} given`;
    }
  }
  return null;
}

/** Why no event of `candidates` is `example` (the closest one's difference), or null. */
function unmatchedEvent(example: Json, candidates: Json[]): string | null {
  let closest: string | undefined;
  for (const c of candidates) {
    if (c.type !== example.type) continue;
    const diff = eventDiff(example, c);
    if (diff === null) return null;
    if (closest === undefined || diff.length < closest.length) closest = diff;
  }
  return `no ${example.type} event given is the example (of ${candidates.length} events; ` +
    `closest: ${closest ?? "none of that type"})`;
}

/** An object whose keys are pids, such as `events_by_pid`. */
function isRecordByPid(v: Json): boolean {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => /^\d+$/.test(k));
}

/** Why `actual` does not have the shape of `example`, or null when it has. */
function shapeDiff(example: Json, actual: Json, path = "$"): string | null {
  if (typeOf(example) !== typeOf(actual)) {
    return `${path}: ${typeOf(example)} in the example, ${typeOf(actual)} given`;
  }
  if (isEvent(example)) {
    const diff = unmatchedEvent(example, [actual]);
    return diff && `${path}: ${diff}`;
  }
  if (typeOf(example) === "array") {
    for (const [i, item] of example.entries()) {
      if (isEvent(item)) {
        const diff = unmatchedEvent(item, actual.filter(isEvent));
        if (diff) return `${path}[${i}]: ${diff}`;
      } else if (!actual.some((x: Json) => shapeDiff(item, x) === null)) {
        return `${path}[${i}]: no item given has its shape`;
      }
    }
    return null;
  }
  if (typeOf(example) === "object") {
    if (isRecordByPid(example)) {
      // the pids differ: each example value must match one of the answer's
      const values = Object.values(actual);
      for (const [key, value] of Object.entries(example)) {
        const flat = values.flat();
        const diff = shapeDiff(value, typeOf(value) === "array" ? flat : values[0], path);
        if (diff) return `${path}.${key}: ${diff}`;
      }
      return null;
    }
    const keys = Object.keys(example).sort(), got = Object.keys(actual).sort();
    if (keys.join() !== got.join()) {
      return `${path}: fields ${keys.join(", ")} in the example, ${got.join(", ")} given`;
    }
    for (const key of keys) {
      const diff = shapeDiff(example[key], actual[key], `${path}.${key}`);
      if (diff) return diff;
    }
  }
  return null;
}

/** A list query with a large limit, so that an example's event is among the answers. */
function widened(command: string): string | null {
  const m = /'([^']*(?:\/events|\/list-)[^']*)'|(\S*(?:\/events|\/list-)\S*)/.exec(command);
  if (!m) return null;
  const url = m[1] ?? m[2];
  const wide = /[?&]limit=\d+/.test(url)
    ? url.replace(/([?&]limit=)\d+/, "$110000")
    : `${url}${url.includes("?") ? "&" : "?"}limit=10000`;
  return command.replace(url, wide);
}

async function bash(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return await runCommand("bash", ["-o", "pipefail", "-c", command], { timeoutMs: 30_000 });
}

Deno.test({
  name: privileged("readme: the shell examples run, and print what the JSON examples show"),
  ignore: !canRunPrivileged,
  async fn() {
    const readme = await Deno.readTextFile(`${ROOT_DIR}README.md`);
    const sections = readmeBlocks(readme);
    assert.deepEqual(sections.map((s) => s.section), SECTIONS, "the README has the sections");
    await using server = await startServer();
    const port = String(server.port);
    let examples = 0, commandsRun = 0;
    for (const { section, blocks } of sections) {
      let outputs: { command: string; json: Json }[] | undefined;
      for (const block of blocks) {
        const where = `README.md:${block.line} (${section})`;
        if (block.lang === "sh") {
          outputs = [];
          for (const written of commands(block.text)) {
            const command = written.replaceAll("9090", port);
            const out = await bash(command);
            commandsRun++;
            assert.equal(out.code, 0, `${where}: ${written}\n${out.stderr}`);
            if (!command.includes(`:${port}`) || command.startsWith("python3")) continue;
            let json: Json;
            try {
              json = JSON.parse(out.stdout);
            } catch {
              assert.fail(`${where}: ${written} printed no JSON: ${out.stdout.slice(0, 500)}`);
            }
            assert.ok(
              typeOf(json) !== "object" || !("error" in json),
              `${where}: ${written} answered ${out.stdout}`,
            );
            outputs.push({ command: written, json });
            const wide = widened(command);
            if (wide) {
              const more = await bash(wide);
              assert.equal(more.code, 0, `${where}: ${wide}\n${more.stderr}`);
              outputs.push({ command: `${written} (limit raised)`, json: JSON.parse(more.stdout) });
            }
          }
        } else if (block.lang === "json") {
          assert.ok(outputs, `${where}: a JSON example after no shell block`);
          const example = JSON.parse(block.text);
          examples++;
          const diffs: string[] = [];
          let matched = false;
          for (const { command, json } of outputs) {
            const diff = isEvent(example)
              ? unmatchedEvent(example, eventsIn(json))
              : shapeDiff(example, json);
            if (diff === null) {
              matched = true;
              break;
            }
            diffs.push(`  ${command}: ${diff}`);
          }
          assert.ok(
            matched,
            `${where}: the example is not what the commands print:\n${diffs.join("\n")}`,
          );
        }
      }
    }
    assert.ok(examples >= 6, `only ${examples} JSON examples checked`);
    assert.ok(commandsRun >= 12, `only ${commandsRun} commands run`);
  },
});

/**
 * The writer behind `eventWriter` (event_json.ts): an event's JSON text as bytes, straight from
 * its fields.
 *
 * Fields with `by` numbers are written in runs: a run's text is kept by all of its numbers and
 * copied as one piece (its fields' texts are kept by their own numbers, to make a run's text
 * when its numbers are new). A field whose number changes at most events (an ephemeral port) is
 * taken out of its run after the first {@linkcode WATCH} events and written fresh each time, so
 * that the rest of the run still repeats.
 *
 * What to write is a plan of steps, and the plan is compiled into one function (`new Function`
 * over the fields' own functions, each called from a site of its own, which the engine can
 * inline; called from one shared loop, every call went through one megamorphic site: measured
 * in one process, packet_drop's and tcp_life's 10,000-event lists took 1.5 times as long). The
 * generated code holds no data: only indices of the functions and texts it is given, and keys
 * quoted by `JSON.stringify`.
 *
 * @module
 */

import type { EventField, Json, ObjectField, SpreadField, ValueField } from "./event_json.ts";
import { JsonBytes, utf8 } from "./json_bytes.ts";

const VALUE = 0, SPREAD = 1, OBJECT = 2;

/** What a field is: VALUE, SPREAD or OBJECT. */
function kindOf(f: EventField): number {
  return "spread" in f ? SPREAD : "fields" in f ? OBJECT : VALUE;
}

/** `JSON.stringify(s)`, without its cost when `s` has nothing to escape. */
function quote(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** The JSON text of a field's value; "" for undefined (the field is left out). */
function valueText(v: Json | undefined): string {
  switch (typeof v) {
    case "string":
      return quote(v);
    case "number":
      return Number.isFinite(v) ? String(v) : "null";
    case "boolean":
      return v ? "true" : "false";
    case "undefined":
      return "";
    default:
      return JSON.stringify(v);
  }
}

/** The members of an object spread, as text without the braces ("" when none is written). */
function spreadText(o: Readonly<Record<string, Json | undefined>>): string {
  const text = JSON.stringify(o);
  return text.length <= 2 ? "" : text.slice(1, -1);
}

/** Writes a value's JSON. */
function put(v: Json, out: JsonBytes): void {
  if (typeof v === "string") out.string(v);
  else if (typeof v === "number") out.number(v);
  else if (v === null) out.ascii("null");
  else if (typeof v === "boolean") out.ascii(v ? "true" : "false");
  else out.text(JSON.stringify(v));
}

/** Texts a field keeps by its `by` number at most, per list; and texts a run keeps. */
const MAX_CACHED = 4096;

/** Events a writer watches before it takes out of runs the fields that change at most events. */
const WATCH = 64;

/** Texts of the last events a run compares its numbers with before it looks them up. */
const RECENT = 4;

/** A run's text for one set of its fields' numbers. */
interface RunText {
  readonly keys: Float64Array;
  readonly bytes: Uint8Array;
  /** the next with the same hash */
  readonly next: RunText | null;
}

/** Consecutive fields with `by` numbers, written as one piece. */
interface Run {
  /** indices of the fields */
  readonly at: Int32Array;
  readonly by: ((slot: number) => number)[];
  /** this event's numbers */
  readonly keys: Float64Array;
  /** texts by a hash of the numbers */
  readonly texts: Map<number, RunText>;
  /** the texts of the last events, the latest first */
  readonly recent: RunText[];
}

/** Whether `a` and `b` hold the same numbers. */
function sameKeys(a: Float64Array, b: Float64Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Writes the kept text of a run whose numbers are those of one of the last events. */
function hit(run: Run, out: JsonBytes): boolean {
  const keys = run.keys, recent = run.recent;
  for (let r = 0; r < recent.length; r++) {
    const t = recent[r];
    if (!sameKeys(t.keys, keys)) continue;
    if (r > 0) {
      recent[r] = recent[0];
      recent[0] = t;
    }
    out.bytes(t.bytes);
    return true;
  }
  return false;
}

/** The end of an object written from `start`: its braces. */
function close(start: number, out: JsonBytes): void {
  if (out.length === start) return out.ascii("{}");
  // the first field was left out: the first text written begins with a comma
  if (out.byteAt(start) !== 0x7b) out.setByte(start, 0x7b);
  out.byte(0x7d);
}

const decoder = new TextDecoder();

/** The text `write` writes (checks). */
function written(write: (slot: number, out: JsonBytes) => void, slot: number): string {
  const probe = new JsonBytes();
  write(slot, probe);
  return probe.take().map((c) => decoder.decode(c)).join("");
}

/** A function of generated code over `values` (named `v0`, `v1`, ... in it). */
function compile<F>(values: unknown[], body: string): F {
  const names = values.map((_, i) => `v${i}`);
  return new Function(...names, `"use strict";\n${body}`)(...values) as F;
}

/**
 * The event object of `fields` at a slot, made by an object literal of them compiled once (the
 * same object, keys in the same order, as a literal written out by hand: a spread's keys where
 * it stands, a value left undefined kept as a key).
 */
export function objectBuilder(
  fields: readonly EventField[],
): (slot: number) => Record<string, unknown> {
  const values: unknown[] = [];
  const v = (x: unknown) => `v${values.push(x) - 1}`;
  const members = fields.map((f) => {
    if (kindOf(f) === SPREAD) return `...${v((f as SpreadField).spread)}(slot)`;
    if (kindOf(f) === VALUE) {
      return `${JSON.stringify((f as ValueField).key)}: ${v((f as ValueField).value)}(slot)`;
    }
    const o = f as ObjectField;
    const build = objectBuilder(o.fields), at = o.at;
    return `${JSON.stringify(o.key)}: ${
      v((slot: number) => {
        const a = at(slot);
        return a < 0 ? null : build(a);
      })
    }(slot)`;
  });
  // code made of keys (quoted by JSON.stringify) and indices only: see the module doc
  return compile(values, `return (slot) => ({\n${members.join(",\n")}\n});`);
}

/** Writes one object's JSON text; see the module's doc. */
export class ObjectWriter {
  /** Writes the object's JSON text at `slot` (compiled from the plan, made again with it). */
  write: (slot: number, out: JsonBytes) => void = () => {};
  readonly #fields: readonly EventField[];
  readonly #kinds: Uint8Array;
  /** `,"key":` of each field ("," for a spread); the first field's begins with `{` */
  readonly #keys: string[];
  readonly #keyBytes: Uint8Array[];
  readonly #caches: (Map<number, string> | null)[];
  readonly #objects: (ObjectWriter | null)[];
  readonly #check: boolean;
  /** what to write: a field's index, or `-1 - r` for run `r` */
  #steps: number[] = [];
  #runs: Run[] = [];
  /** events written, and how often each field's number changed from one event to the next */
  #events = 0;
  readonly #changes: Uint32Array;
  readonly #previous: Float64Array;
  readonly #volatile: Uint8Array;

  constructor(fields: readonly EventField[], check: boolean) {
    this.#fields = fields;
    this.#check = check;
    this.#kinds = Uint8Array.from(fields, kindOf);
    this.#keys = fields.map((f, i) =>
      (i === 0 ? "{" : ",") + ("key" in f ? `${JSON.stringify(f.key)}:` : "")
    );
    this.#keyBytes = this.#keys.map(utf8);
    this.#caches = fields.map((f) => "by" in f && f.by ? new Map() : null);
    this.#objects = fields.map((f) => "fields" in f ? new ObjectWriter(f.fields, check) : null);
    this.#changes = new Uint32Array(fields.length);
    this.#previous = new Float64Array(fields.length).fill(NaN);
    this.#volatile = new Uint8Array(fields.length);
    this.#plan();
  }

  /** The steps and runs (consecutive fields with `by` that are not volatile), compiled. */
  #plan(): void {
    const steps: number[] = [];
    const runs: Run[] = [];
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i++) {
      if (!this.#caches[i] || this.#volatile[i]) {
        steps.push(i);
        continue;
      }
      const at = [i];
      while (i + 1 < fields.length && this.#caches[i + 1] && !this.#volatile[i + 1]) at.push(++i);
      steps.push(-1 - runs.length);
      runs.push({
        at: Int32Array.from(at),
        by: at.map((j) => (fields[j] as ValueField).by!),
        keys: new Float64Array(at.length),
        texts: new Map(),
        recent: [],
      });
    }
    this.#steps = steps;
    this.#runs = runs;
    this.#compile();
  }

  /** The plan as one function: each run's numbers, then its kept text; each field's value. */
  #compile(): void {
    const values: unknown[] = [];
    const v = (x: unknown) => `v${values.push(x) - 1}`;
    const check = this.#check, watching = this.#events < WATCH;
    const miss = v((r: number, slot: number, out: JsonBytes) => this.#miss(r, slot, out));
    const spreadOut = v((i: number, slot: number, out: JsonBytes) => {
      const text = spreadText((this.#fields[i] as SpreadField).spread(slot));
      if (text !== "") out.text(this.#keys[i] + text);
    });
    const verify = v((i: number, slot: number, text: string) => this.#verify(i, slot, text));
    let body = "const start = out.length;\n";
    for (const step of this.#steps) {
      if (step < 0) {
        const r = -1 - step, run = this.#runs[r];
        const keys = v(run.keys);
        run.by.forEach((by, j) => body += `${keys}[${j}] = ${v(by)}(slot);\n`);
        if (watching) body += `${v(() => this.#watch(run))}();\n`;
        body += check
          ? `${miss}(${r}, slot, out);\n`
          : `if (!${v(hit)}(${v(run)}, out)) ${miss}(${r}, slot, out);\n`;
        continue;
      }
      const f = this.#fields[step], key = v(this.#keyBytes[step]);
      if (this.#kinds[step] === SPREAD) body += `${spreadOut}(${step}, slot, out);\n`;
      else if (this.#kinds[step] === OBJECT) {
        const at = v((f as ObjectField).at), object = v(this.#objects[step]);
        body += `{ const at = ${at}(slot);\nout.bytes(${key});\n` +
          `if (at < 0) out.ascii("null"); else ${object}.write(at, out); }\n`;
      } else if ((f as ValueField).write) {
        const write = v((f as ValueField).write);
        if (check) body += `${verify}(${step}, slot, ${v(written)}(${write}, slot));\n`;
        body += `out.bytes(${key});\n${write}(slot, out);\n`;
      } else {
        body += `{ const x = ${v((f as ValueField).value)}(slot);\n` +
          `if (x !== undefined) { out.bytes(${key});\n${v(put)}(x, out); } }\n`;
      }
    }
    if (watching) body += `${v(() => this.#counted())}();\n`;
    body += `${v(close)}(start, out);\n`;
    this.write = compile(values, `return function write(slot, out) {\n${body}};`);
  }

  /** `,"key":value` of field `i` at `slot` ("" when it is left out). */
  #fresh(i: number, slot: number): string {
    const f = this.#fields[i];
    const write = this.#kinds[i] === VALUE ? (f as ValueField).write : undefined;
    const text = this.#kinds[i] === SPREAD
      ? spreadText((f as SpreadField).spread(slot))
      : write
      ? written(write, slot)
      : valueText((f as ValueField).value(slot));
    return text === "" ? "" : this.#keys[i] + text;
  }

  /** The text of field `i` (one with `by`) at `slot`, whose number is `key`. */
  #part(i: number, key: number, slot: number): string {
    if (!(key >= 0)) return this.#fresh(i, slot);
    const cache = this.#caches[i]!;
    let part = cache.get(key);
    if (part === undefined) {
      part = this.#fresh(i, slot);
      if (cache.size < MAX_CACHED) cache.set(key, part);
    }
    return part;
  }

  /** Throws when the text written of field `i` is not the JSON of its value. */
  #verify(i: number, slot: number, text: string): void {
    const f = this.#fields[i] as ValueField;
    const json = valueText(f.value(slot));
    if (json !== text) throw new Error(`${f.key}: wrote ${text}, its JSON is ${json} (${slot})`);
  }

  /**
   * Writes run `r` at `slot` (its numbers are in its `keys`) when they are not those of a last
   * event: its text kept by them, made of its fields' texts when they are new.
   */
  #miss(r: number, slot: number, out: JsonBytes): void {
    const run = this.#runs[r];
    const { at, keys, texts, recent } = run;
    let hash = 0, whole = true;
    for (let j = 0; j < at.length; j++) {
      const key = keys[j];
      if (key >= 0) hash = Math.imul(hash ^ (key >>> 0) ^ ((key / 4294967296) >>> 0), 0x9e3779b1);
      else whole = false;
    }
    let t: RunText | null = null;
    if (whole) {
      t = texts.get(hash) ?? null;
      while (t !== null && !sameKeys(t.keys, keys)) t = t.next;
      if (t === null && texts.size < MAX_CACHED) {
        let text = "";
        for (let j = 0; j < at.length; j++) text += this.#part(at[j], keys[j], slot);
        t = { keys: keys.slice(), bytes: utf8(text), next: texts.get(hash) ?? null };
        texts.set(hash, t);
      }
    }
    if (this.#check) {
      const fresh = Array.from(at, (i) => this.#fresh(i, slot)).join("");
      const kept = t === null
        ? Array.from(at, (i, j) => this.#part(i, keys[j], slot)).join("")
        : decoder.decode(t.bytes);
      if (fresh !== kept) throw new Error(`a run's numbers gave ${kept} before, ${fresh} now`);
    }
    if (t === null) {
      for (let j = 0; j < at.length; j++) out.text(this.#part(at[j], keys[j], slot));
      return;
    }
    recent.unshift(t);
    if (recent.length > RECENT) recent.pop();
    out.bytes(t.bytes);
  }

  /** Counts the changes of a run's numbers from one event to the next. */
  #watch(run: Run): void {
    const { at, keys } = run;
    for (let j = 0; j < at.length; j++) {
      if (keys[j] !== this.#previous[at[j]]) this.#changes[at[j]]++;
      this.#previous[at[j]] = keys[j];
    }
  }

  /** After an event: once {@linkcode WATCH} are written, plans again without watching. */
  #counted(): void {
    if (++this.#events < WATCH) return;
    for (let i = 0; i < this.#changes.length; i++) {
      if (this.#caches[i] && this.#changes[i] > WATCH / 2) this.#volatile[i] = 1;
    }
    this.#plan();
  }
}

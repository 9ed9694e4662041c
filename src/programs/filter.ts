/**
 * Filters over a program's store columns, declared once per field and shared by every list,
 * summary, stream and top route: `unit=nginx.service`, `destination=10.0.0.0/8`,
 * `result=!ok,!EINPROGRESS`. A comma list means any of its values; a value starting with `!`
 * excludes; different parameters must all hold. A value is parsed once (a malformed one is an
 * error naming the parameter); each query compiles the parsed values into a test of a row's
 * columns (typed arrays, lookup tables, masks over attribution ids): no event is turned into
 * JSON to be filtered.
 *
 * A program declares its fields as {@linkcode FilterField}s (most from the kinds here:
 * {@linkcode ipField}, {@linkcode portField}, {@linkcode numberField}, {@linkcode codeField},
 * {@linkcode attributionFilters}) and its top-k keys as {@linkcode GroupField}s.
 *
 * @module
 */

import { type AttributionJson, attributionOf } from "../cgroup/mod.ts";
import { type Cidr, cidrHolds, formatCidr, parseCidr } from "../net/cidr.ts";
import type { EventTable, Store } from "../store/mod.ts";

/** A test of the row at a slot. */
export type RowTest = (slot: number) => boolean;

/** Columns of any table, by name. */
// deno-lint-ignore no-explicit-any
type AnyCols = Record<string, any>;

/** One filterable field of a program's events. */
export interface FilterField<V = unknown> {
  /** What it matches and how a value is written (the OpenAPI parameter's description). */
  description: string;
  /** A value, as the OpenAPI document shows it. */
  example: string;
  /** One value (without `!`): its normal form for the echo, and what compile takes; throws a TypeError saying what is wrong. */
  parse(text: string): { label: string; value: V };
  /** A test that holds for the rows whose field is any of `values`, over `table`'s columns now. */
  compile(table: EventTable, store: Store, values: V[]): RowTest;
}

/** One parameter as parsed: values to match any of, values to exclude, and the echo. */
export interface ParsedParam {
  values: unknown[];
  not: unknown[];
  /** The values in normal form, excluded ones with their `!`. */
  echo: string[];
}

/** Parsed field filters by parameter name; all must hold. */
export type Where = ReadonlyMap<string, ParsedParam>;

/** Values in one parameter at most. */
export const MAX_VALUES = 64;

/**
 * Parses `text` (`a,b,!c`) with `field`. Throws a TypeError naming what is wrong (the caller
 * names the parameter).
 */
export function parseParam(field: FilterField, text: string): ParsedParam {
  const items = text.split(",").map((t) => t.trim());
  if (items.length > MAX_VALUES) {
    throw new TypeError(`at most ${MAX_VALUES} comma-separated values, got ${items.length}`);
  }
  const out: ParsedParam = { values: [], not: [], echo: [] };
  for (const item of items) {
    const negated = item.startsWith("!");
    const body = negated ? item.slice(1) : item;
    if (body === "") {
      throw new TypeError(
        "has an empty value: give values separated by commas, each may start with ! to exclude it",
      );
    }
    const { label, value } = field.parse(body);
    (negated ? out.not : out.values).push(value);
    out.echo.push(negated ? `!${label}` : label);
  }
  return out;
}

/** The applied filters as the answers echo them: parameter -> values in normal form. */
export function echoOf(where: Where | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, p] of where ?? []) out[name] = p.echo;
  return out;
}

const NONE: RowTest = () => false;

/**
 * One test of `table`'s rows for every parameter of `where`, or null when there is none (every
 * row matches). A parameter the program has no field for matches no row (all must hold).
 */
export function compileWhere(
  fields: Readonly<Record<string, FilterField>> | undefined,
  table: EventTable,
  store: Store,
  where: Where | undefined,
): RowTest | null {
  let test = compileOver(fields, table, store, where);
  if (test === null || test === NONE) return test;
  // The columns move once, to the table's full size, and a sliced scan may go on after: a test
  // compiled over the old ones is compiled again (one comparison per row otherwise).
  let cols = table.cols;
  return (s) => {
    if (table.cols !== cols) {
      cols = table.cols;
      test = compileOver(fields, table, store, where)!;
    }
    return test!(s);
  };
}

function compileOver(
  fields: Readonly<Record<string, FilterField>> | undefined,
  table: EventTable,
  store: Store,
  where: Where | undefined,
): RowTest | null {
  if (!where || where.size === 0) return null;
  const tests: RowTest[] = [];
  for (const [name, p] of where) {
    const field = fields?.[name];
    if (!field) return NONE;
    const inc = p.values.length ? field.compile(table, store, p.values) : null;
    const exc = p.not.length ? field.compile(table, store, p.not) : null;
    if (inc && exc) tests.push((s) => inc(s) && !exc(s));
    else if (inc) tests.push(inc);
    else if (exc) tests.push((s) => !exc(s));
  }
  if (tests.length === 0) return null;
  if (tests.length === 1) return tests[0];
  if (tests.length === 2) {
    const [a, b] = tests;
    return (s) => a(s) && b(s);
  }
  return (s) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i](s)) return false;
    return true;
  };
}

// --- kinds of fields ---

/**
 * An IP address or CIDR prefix field over `bytes16` address columns (any of them), with the IP
 * version of a row from `version` (4, 6, or 0 when the row has no address).
 */
export function ipField(
  description: string,
  options: { columns: readonly string[]; version: (cols: AnyCols) => (slot: number) => number },
): FilterField<Cidr> {
  return {
    description:
      `${description}: an IP address or a CIDR prefix (10.0.0.0/8, fd00::/8; an IPv4 prefix also holds IPv4-mapped IPv6 addresses)`,
    example: "10.0.0.0/8",
    parse(text) {
      const cidr = parseCidr(text);
      if (!cidr) throw new TypeError(`'${text}' is no IP address or CIDR prefix (e.g. 10.0.0.0/8)`);
      return { label: formatCidr(cidr), value: cidr };
    },
    compile(table, _store, cidrs) {
      const cols = table.cols as AnyCols;
      const version = options.version(cols);
      const arrays = options.columns.map((c) => cols[c] as Uint8Array);
      return (s) => {
        const v = version(s);
        if (v === 0) return false;
        for (const a of arrays) {
          for (const c of cidrs) if (cidrHolds(c, v, a, s * 16)) return true;
        }
        return false;
      };
    },
  };
}

/** A port field over `u16` columns (any of them): `443` or a range `8000-8080`. */
export function portField(
  description: string,
  options: { columns: readonly string[]; valid?: (cols: AnyCols) => (slot: number) => boolean },
): FilterField<[number, number]> {
  return {
    description: `${description}: a port (443) or a range (8000-8080)`,
    example: "443",
    parse(text) {
      const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
      const lo = m ? Number(m[1]) : NaN, hi = m?.[2] !== undefined ? Number(m[2]) : lo;
      if (!m || lo > 65535 || hi > 65535 || hi < lo) {
        throw new TypeError(`'${text}' is no port from 0 to 65535 nor a range of them (8000-8080)`);
      }
      return { label: lo === hi ? String(lo) : `${lo}-${hi}`, value: [lo, hi] };
    },
    compile(table, _store, ranges) {
      const cols = table.cols as AnyCols;
      const allowed = new Uint8Array(65536);
      for (const [lo, hi] of ranges) allowed.fill(1, lo, hi + 1);
      const arrays = options.columns.map((c) => cols[c] as Uint16Array);
      const valid = options.valid?.(cols);
      if (arrays.length === 1 && !valid) {
        const a = arrays[0];
        return (s) => allowed[a[s]] === 1;
      }
      return (s) => {
        if (valid && !valid(s)) return false;
        for (const a of arrays) if (allowed[a[s]] === 1) return true;
        return false;
      };
    },
  };
}

/** A whole-number field over one column (a uid). */
export function numberField(
  description: string,
  options: { column: string; max: number; example?: string },
): FilterField<number> {
  return {
    description,
    example: options.example ?? "1000",
    parse(text) {
      if (!/^[0-9]{1,10}$/.test(text) || Number(text) > options.max) {
        throw new TypeError(`'${text}' is no whole number from 0 to ${options.max}`);
      }
      return { label: String(Number(text)), value: Number(text) };
    },
    compile(table, _store, values) {
      const col = (table.cols as AnyCols)[options.column] as ArrayLike<number>;
      if (values.length === 1) {
        const v = values[0];
        return (s) => col[s] === v;
      }
      const set = new Set(values);
      return (s) => set.has(col[s]);
    },
  };
}

/**
 * A field of named codes: `parse` turns a name into the codes it stands for (or throws), `key`
 * gives a row's code from its columns.
 */
export function codeField(
  description: string,
  options: {
    example: string;
    parse: (text: string) => { label: string; codes: readonly number[] };
    key: (cols: AnyCols, store: Store) => (slot: number) => number;
  },
): FilterField<readonly number[]> {
  return {
    description,
    example: options.example,
    parse(text) {
      const { label, codes } = options.parse(text);
      return { label, value: codes };
    },
    compile(table, store, values) {
      const key = options.key(table.cols as AnyCols, store);
      const codes = values.flat();
      if (codes.every((c) => Number.isInteger(c) && c >= 0 && c < 65536)) {
        const allowed = new Uint8Array(65536);
        for (const c of codes) allowed[c] = 1;
        return (s) => {
          const k = key(s);
          return k >= 0 && k < 65536 && allowed[k] === 1;
        };
      }
      const set = new Set(codes);
      return (s) => set.has(key(s));
    },
  };
}

/**
 * A parse for {@linkcode codeField} from a fixed list of names (matched without regard to case)
 * and their codes; the error lists them.
 */
export function namesParse(
  names: Readonly<Record<string, number | readonly number[]>>,
): (text: string) => { label: string; codes: readonly number[] } {
  const byUpper = new Map(
    Object.entries(names).map(([k, v]) => [k.toUpperCase(), [k, v] as const]),
  );
  return (text) => {
    const found = byUpper.get(text.toUpperCase());
    if (!found) {
      throw new TypeError(`'${text}' is not one of: ${Object.keys(names).join(", ")}`);
    }
    const [label, v] = found;
    return { label, codes: typeof v === "number" ? [v] : v };
  };
}

/** A row test from a test of its attribution (a mask over attribution ids, grown as they come). */
function attributionTest(
  table: EventTable,
  store: Store,
  test: (a: AttributionJson) => boolean,
): RowTest {
  const attrs = attributionOf(store);
  const col = (table.cols as AnyCols).attr as Uint32Array;
  let mask = attrs.mask(test);
  return (s) => {
    const a = col[s];
    if (a >= mask.length) mask = attrs.mask(test);
    return mask[a] === 1;
  };
}

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]{1,256}$/;
const RUNTIMES = ["docker", "containerd", "cri-o", "podman", "cri", "unknown"];

/**
 * `unit`, `container`, `container_runtime` and `cgroup`: the fields of every program's
 * attribution column (`attr`). `none` matches events without one.
 */
export function attributionFilters(): Record<string, FilterField> {
  const unit: FilterField<string | null> = {
    description:
      "the systemd unit of the process (nginx.service, session-3.scope, docker-<id>.scope); `none`: events without one",
    example: "nginx.service",
    parse(text) {
      if (text === "none") return { label: "none", value: null };
      if (!UNIT_NAME.test(text)) throw new TypeError(`'${text}' is no systemd unit name`);
      return { label: text, value: text };
    },
    compile(table, store, units) {
      return attributionTest(table, store, (a) => units.includes(a.unit));
    },
  };
  const container: FilterField<string | null> = {
    description:
      "the container: its id or a prefix of it (hex, e.g. docker's 12 digits); `none`: events outside containers",
    example: "4f1c2e0b9a8d",
    parse(text) {
      if (text === "none") return { label: "none", value: null };
      const id = text.toLowerCase();
      if (!/^[0-9a-f]{1,64}$/.test(id)) {
        throw new TypeError(`'${text}' is no container id (hex digits, 64 at most) nor none`);
      }
      return { label: id, value: id };
    },
    compile(table, store, ids) {
      return attributionTest(
        table,
        store,
        (a) =>
          ids.some((id) =>
            id === null ? a.container_id === null : a.container_id?.startsWith(id) === true
          ),
      );
    },
  };
  const runtime: FilterField<string | null> = {
    description: `the container runtime (${RUNTIMES.join(", ")}); \`none\`: outside containers`,
    example: "docker",
    parse(text) {
      if (text === "none") return { label: "none", value: null };
      if (!RUNTIMES.includes(text)) {
        throw new TypeError(`'${text}' is not one of: ${RUNTIMES.join(", ")}, none`);
      }
      return { label: text, value: text };
    },
    compile(table, store, names) {
      return attributionTest(table, store, (a) => names.includes(a.container_runtime));
    },
  };
  const cgroup: FilterField<string> = {
    description:
      "the cgroup path or a parent of it (/system.slice holds /system.slice/nginx.service)",
    example: "/system.slice",
    parse(text) {
      if (!text.startsWith("/") || text.length > 4096 || text.includes("//")) {
        throw new TypeError(`'${text}' is no cgroup path (it starts with /, e.g. /system.slice)`);
      }
      const path = text.length > 1 ? text.replace(/\/$/, "") : text;
      return { label: path, value: path };
    },
    compile(table, store, paths) {
      return attributionTest(table, store, (a) =>
        a.cgroup_path !== null &&
        paths.some((p) => p === "/" || a.cgroup_path === p || a.cgroup_path!.startsWith(p + "/")));
    },
  };
  return {
    unit,
    container,
    container_runtime: runtime as FilterField,
    cgroup: cgroup as FilterField,
  } as Record<string, FilterField>;
}

// --- top-k ---

/** A key rows can be grouped by in `GET /api/programs/{name}/top`. */
export interface GroupField {
  description: string;
  /** A row's key (rows with equal keys are one group). */
  key(table: EventTable, store: Store): (slot: number) => number | string;
  /** The JSON value of the group of the row at a slot. */
  value(table: EventTable, store: Store): (slot: number) => unknown;
}

/** A group field whose key is its JSON value (strings or numbers cheap to compute). */
export function simpleGroup(
  description: string,
  value: (table: EventTable, store: Store) => (slot: number) => string | number | null,
): GroupField {
  return {
    description,
    key: (table, store) => {
      const f = value(table, store);
      return (s) => f(s) ?? "\u0000null";
    },
    value,
  };
}

/** `unit`, `container`, `container_runtime`, `cgroup`: group keys of the attribution column. */
export function attributionGroups(): Record<string, GroupField> {
  const of = (field: keyof AttributionJson, description: string): GroupField => ({
    description,
    key: (table) => {
      const col = (table.cols as AnyCols).attr as Uint32Array;
      return (s) => col[s];
    },
    value: (table, store) => {
      const col = (table.cols as AnyCols).attr as Uint32Array;
      const attrs = attributionOf(store);
      return (s) => attrs.json(col[s])[field];
    },
  });
  // the key is the attribution id: ids of one unit are merged when the groups are labelled
  return {
    unit: of("unit", "the systemd unit"),
    container: of("container_id", "the container id"),
    container_runtime: of("container_runtime", "the container runtime"),
    cgroup: of("cgroup_path", "the cgroup path"),
  };
}

/** One group of a top-k answer. */
export interface TopGroup {
  key: Record<string, unknown>;
  count: number;
  failed?: number;
}

/**
 * The `limit` largest groups of the rows `forEach` visits by the fields `by` (ties: the group
 * seen first), exact: every row is counted. Groups whose JSON values are equal (two cgroups of
 * one unit) are merged. `failed`, when given, counts failures per group too.
 */
export async function topGroups(
  table: EventTable,
  store: Store,
  options: {
    by: readonly string[];
    fields: Readonly<Record<string, GroupField>>;
    limit: number;
    forEach: (fn: (slot: number) => void) => Promise<number>;
    /** Made again when the table's columns move (a sliced scan may outlive them). */
    failed?: () => RowTest | null;
  },
): Promise<{ total: number; groups: TopGroup[]; other_groups: number; other_count: number }> {
  let cols = table.cols;
  const compile = () => ({
    keys: options.by.map((b) => options.fields[b].key(table, store)),
    values: options.by.map((b) => options.fields[b].value(table, store)),
    failed: options.failed?.() ?? null,
  });
  let { keys, values, failed } = compile();
  interface Acc {
    /** The group's label, read from its first row when it is seen (it may be evicted later). */
    key: Record<string, unknown>;
    n: number;
    f: number;
  }
  const acc = new Map<number | string, Acc>();
  const total = await options.forEach((s) => {
    if (table.cols !== cols) {
      cols = table.cols;
      ({ keys, values, failed } = compile());
    }
    let k: number | string;
    if (keys.length === 1) k = keys[0](s);
    else {
      k = "";
      for (let i = 0; i < keys.length; i++) k += (i ? "\u0001" : "") + keys[i](s);
    }
    let a = acc.get(k);
    if (!a) {
      const key: Record<string, unknown> = {};
      options.by.forEach((b, i) => key[b] = values[i](s));
      acc.set(k, a = { key, n: 0, f: 0 });
    }
    a.n++;
    if (failed && failed(s)) a.f++;
  });
  // merge groups whose labels are equal
  const merged = new Map<string, TopGroup>();
  for (const a of acc.values()) {
    const key = a.key;
    const id = JSON.stringify(key);
    const g = merged.get(id);
    if (g) {
      g.count += a.n;
      if (failed) g.failed! += a.f;
    } else merged.set(id, failed ? { key, count: a.n, failed: a.f } : { key, count: a.n });
  }
  const sorted = [...merged.values()].sort((a, b) => b.count - a.count);
  const groups = sorted.slice(0, options.limit);
  const rest = sorted.slice(options.limit);
  return {
    total,
    groups,
    other_groups: rest.length,
    other_count: rest.reduce((sum, g) => sum + g.count, 0),
  };
}

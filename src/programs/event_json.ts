/**
 * A program's event declared once as a list of fields over its columns, from which both come:
 * the event object (`toJson`, for the stream, the compatibility lists, `/open`) and the event's
 * JSON text made straight from the columns ({@linkcode eventWriter}, for long lists), with no
 * object in between. The text is `JSON.stringify` of the object, byte for byte, keys in the same
 * order (`event_json_test.ts` holds every program to that).
 *
 * A field's value is a function of the row's slot. A field may also say which number alone
 * decides its value (`by`: a command's string id, an IPv4 address and port packed into one
 * number): a writer then makes the value's text once per number, and copies the text of a run
 * of such fields whose numbers repeat as one piece (`_event_writer.ts`). A field may also write
 * its JSON itself (`write`: times, `ip:port`), as digits, with no string made.
 *
 * @example
 * ```ts
 * const toJson = eventJson<Columns>((table, store) => {
 *   const c = { ...table.cols }; // the table's own object is slow to read (a dictionary)
 *   return {
 *     fields: [
 *       ...baseFields("connection", table, store),
 *       intField("uid", (s) => c.uid[s]),
 *       field("result", (s) => resultName(c.ret[s]), (s) => c.ret[s] + 2 ** 31),
 *     ],
 *   };
 * });
 * ```
 *
 * @module
 */

import { attributionOf } from "../cgroup/mod.ts";
import { formatIPv4, joinHostPort } from "../net/address.ts";
import type { ColumnSpec, EventTable, Store } from "../store/mod.ts";
import { objectBuilder, ObjectWriter } from "./_event_writer.ts";
import type { JsonBytes } from "./json_bytes.ts";
import type { Program } from "./program.ts";
import { isoMicros, roundMicros } from "./query.ts";

/** A value an event field holds. */
export type Json =
  | string
  | number
  | boolean
  | null
  | readonly Json[]
  | { readonly [key: string]: Json | undefined };

/** A field holding one value. */
export interface ValueField {
  readonly key: string;
  /** The value at a slot (`undefined` is left out of the JSON, as `JSON.stringify` does). */
  value(slot: number): Json | undefined;
  /**
   * A number that alone decides the value at a slot (the same number, the same value, for as
   * long as the binding lives), or a negative one when there is none for that row.
   */
  by?(slot: number): number;
  /** Writes the value's JSON text directly (`JSON.stringify(value(slot))`: the tests check). */
  write?(slot: number, out: JsonBytes): void;
}

/** Fields of an object spread into the event at this place (`...attribution`). */
export interface SpreadField {
  spread(slot: number): Readonly<Record<string, Json | undefined>>;
  /** As {@linkcode ValueField.by}. */
  by?(slot: number): number;
}

/** A field whose value is an object of its own fields, or null. */
export interface ObjectField {
  readonly key: string;
  /** The slot its fields read (of this table or another), or -1 for null. */
  at(slot: number): number;
  readonly fields: readonly EventField[];
}

export type EventField = ValueField | SpreadField | ObjectField;

/**
 * A program's fields bound to a table (its columns as they are now) and a store. Another
 * table's columns are read through that table at each call: they may move meanwhile.
 */
export interface EventShape {
  readonly fields: readonly EventField[];
  /** Called before the fields of each event: resets what its fields share for one row. */
  begin?(slot: number): void;
}

/** Binds a program's fields; made again whenever the table's columns move. */
export type EventBinder<S extends ColumnSpec = ColumnSpec> = (
  table: EventTable<S>,
  store: Store,
) => EventShape;

/** A field holding `value(slot)`; `by` as {@linkcode ValueField.by}. */
export function field(
  key: string,
  value: (slot: number) => Json | undefined,
  by?: (slot: number) => number,
): ValueField {
  return by ? { key, value, by } : { key, value };
}

/**
 * A field holding a number that is its own `by` number when it is not negative (a pid, a
 * port, a count): a run of fields around it whose values repeat stays one part.
 */
export function intField(key: string, value: (slot: number) => number): ValueField {
  return { key, value, by: value };
}

/**
 * A field holding milliseconds to the microsecond (`roundMicros`), or null when `ms` gives null.
 */
export function microsField(key: string, ms: (slot: number) => number | null): ValueField {
  return {
    key,
    value: (s) => {
      const v = ms(s);
      return v === null ? null : roundMicros(v);
    },
    write: (s, out) => {
      const v = ms(s);
      if (v === null) out.ascii("null");
      else out.micros(v);
    },
  };
}

/** A field holding a time to the microsecond (`isoMicros`), or null when `ms` gives null. */
export function timeField(key: string, ms: (slot: number) => number | null): ValueField {
  return {
    key,
    value: (s) => {
      const v = ms(s);
      return v === null ? null : isoMicros(v);
    },
    write: (s, out) => {
      const v = ms(s);
      if (v === null) out.ascii("null");
      else out.isoMicros(v);
    },
  };
}

/**
 * A field holding `ip:port` (`joinHostPort`: `[ip]:port` for IPv6), the address alone when
 * `port` gives null, or null when `ip` gives null; `by` as {@linkcode ValueField.by}.
 */
export function endpointField(
  key: string,
  ip: (slot: number) => string | null,
  port: (slot: number) => number | null,
  by?: (slot: number) => number,
): ValueField {
  const field: ValueField = {
    key,
    value: (s) => {
      const address = ip(s);
      if (address === null) return null;
      const p = port(s);
      return p === null ? address : joinHostPort(address, p);
    },
    write: (s, out) => {
      const address = ip(s);
      if (address === null) return out.ascii("null");
      const p = port(s);
      if (p === null) out.plain(address);
      else out.hostPort(address, p);
    },
  };
  return by ? { ...field, by } : field;
}

/** The fields of `value(slot)` spread into the event; `by` as {@linkcode ValueField.by}. */
export function spread(
  value: (slot: number) => Readonly<Record<string, Json | undefined>>,
  by?: (slot: number) => number,
): SpreadField {
  return by ? { spread: value, by } : { spread: value };
}

/** An object of `fields` read at slot `at(slot)`, or null when that is -1. */
export function object(
  key: string,
  at: (slot: number) => number,
  fields: readonly EventField[],
): ObjectField {
  return { key, at, fields };
}

/** A string field that is a constant. */
export function constant(key: string, value: string): ValueField {
  return { key, value: () => value, by: () => 0 };
}

/**
 * The fields every event begins with (`EventBase` of schema.ts): type, wall_time, timestamp_ms,
 * pid, command.
 */
export function baseFields(type: string, table: EventTable, store: Store): EventField[] {
  const ts = table.cols.ts, pid = table.cols.pid, comm = table.cols.comm;
  const strings = store.strings;
  return [
    constant("type", type),
    timeField("wall_time", (s) => ts[s]),
    microsField("timestamp_ms", (s) => ts[s]),
    intField("pid", (s) => pid[s]),
    field("command", (s) => strings.get(comm[s]), (s) => comm[s]),
  ];
}

/** The attribution fields of every event (cgroup_path, unit, container_id, container_runtime). */
export function attributionFields(table: EventTable, store: Store): SpreadField {
  const attr = (table.cols as Record<string, ArrayLike<number>>).attr;
  const attrs = attributionOf(store);
  return spread((s) => attrs.json(attr[s]) as unknown as Record<string, Json>, (s) => attr[s]);
}

/** The 4 bytes of the IPv4 address at `bytes[16 * slot]` as one number (a `by` key). */
export function ipv4Key(bytes: Uint8Array, slot: number): number {
  const at = 16 * slot;
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/**
 * `formatIPv4` of the address at `bytes[16 * slot]`, kept by address (at most 4096 of them): a
 * list formats each address once.
 */
export function ipv4Texts(): (bytes: Uint8Array, slot: number) => string {
  const texts = new Map<number, string>();
  return (bytes, slot) => {
    const key = ipv4Key(bytes, slot);
    let text = texts.get(key);
    if (text === undefined) {
      if (texts.size >= 4096) texts.clear();
      texts.set(key, text = formatIPv4(bytes, 16 * slot));
    }
    return text;
  };
}

/** A `by` key no IPv4 key (below 2^32) nor IPv4 and port (below 2^48) is: `2^50 + n`. */
export function otherKey(n: number): number {
  return 2 ** 50 + n;
}

/**
 * Small numbers for pairs of 32-bit halves (a 64-bit kernel address), as `by` keys: the same
 * pair, the same number, for as long as the function lives.
 */
export function pairIds(): (lo: number, hi: number) => number {
  const byLo = new Map<number, number[]>(); // lo -> [hi, id, hi, id, ...]
  let next = 0;
  return (lo, hi) => {
    let list = byLo.get(lo);
    if (!list) byLo.set(lo, list = []);
    for (let i = 0; i < list.length; i += 2) if (list[i] === hi) return list[i + 1];
    list.push(hi, next);
    return next++;
  };
}

const FIELDS = Symbol("event fields");

/** A `toJson` made by {@linkcode eventJson}: it carries its fields' binder. */
export type EventToJson<S extends ColumnSpec> =
  & ((table: EventTable<S>, slot: number, store: Store) => Record<string, unknown>)
  & { readonly [FIELDS]: EventBinder<S> };

/**
 * A program's `toJson` from its fields: `bind` is called once per table and store (and again
 * when the table's columns move), not per event.
 */
export function eventJson<S extends ColumnSpec>(bind: EventBinder<S>): EventToJson<S> {
  const bound = new WeakMap<
    EventTable<S>,
    {
      cols: EventTable<S>["cols"];
      store: Store;
      shape: EventShape;
      build: (slot: number) => Record<string, unknown>;
    }
  >();
  const toJson = (table: EventTable<S>, slot: number, store: Store) => {
    let b = bound.get(table);
    if (!b || b.cols !== table.cols || b.store !== store) {
      const shape = bind(table, store);
      bound.set(table, b = { cols: table.cols, store, shape, build: objectBuilder(shape.fields) });
    }
    b.shape.begin?.(slot);
    return b.build(slot);
  };
  return Object.assign(toJson, { [FIELDS]: bind });
}

/** Writes the JSON text of a program's events. */
export interface EventWriter {
  /** Writes `JSON.stringify(program.toJson(table, slot, store))` to `out`. */
  write(slot: number, out: JsonBytes): void;
}

/**
 * A writer of the JSON text of `program`'s events in `table`, for one list: the texts of values
 * that repeat (commands, addresses, names) are made once. A program whose `toJson` was not made
 * by {@linkcode eventJson} gets `JSON.stringify` of its objects. With `check`, each text kept is
 * compared with the text made fresh, and each text written directly with the JSON of the value
 * (tests).
 */
export function eventWriter(
  program: Program,
  table: EventTable,
  store: Store,
  options: { check?: boolean } = {},
): EventWriter {
  const bind = (program.toJson as Partial<EventToJson<ColumnSpec>>)[FIELDS];
  if (!bind) {
    return { write: (slot, out) => out.text(JSON.stringify(program.toJson(table, slot, store))) };
  }
  const check = options.check ?? false;
  let cols = table.cols;
  let shape = bind(table, store);
  let writer = new ObjectWriter(shape.fields, check);
  return {
    write(slot, out) {
      if (table.cols !== cols) { // the table moved its columns: bind again, texts kept are dropped
        cols = table.cols;
        shape = bind(table, store);
        writer = new ObjectWriter(shape.fields, check);
      }
      shape.begin?.(slot);
      writer.write(slot, out);
    },
  };
}

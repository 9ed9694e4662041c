/**
 * What every monitoring program provides. A program is a `bpf/<name>.bpf.c` + `bpf/<name>.h` pair
 * and a `src/programs/<name>/` folder exporting a {@linkcode Program}; adding it to the list in
 * `mod.ts` gives it a lifecycle in the manager, a table in the store and its REST endpoints.
 *
 * @module
 */

import type { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppContext } from "../http/service.ts";
import type { MetricFamily } from "../metrics/exposition.ts";
import type { LabelCap } from "../metrics/label_cap.ts";
import type { BpfObject, RingBuffer } from "../ffi/shim.ts";
import type { ColumnSpec, EventTable, Store } from "../store/mod.ts";
import type { KernelFeature } from "./capabilities.ts";
import type { FilterField, GroupField } from "./filter.ts";
import type { Slicer, SummaryQuery } from "./query.ts";

/** Turns kernel CLOCK_BOOTTIME nanoseconds into Unix milliseconds. */
export interface Clock {
  /** Unix time in ms of a boot-time stamp given as its low and high 32 bits. */
  wallMs(lo: number, hi: number): number;
  /** Unix time in ms at boot: `wallMs(lo, hi)` is `(hi * 2 ** 32 + lo) / 1e6 + offsetMs`. */
  readonly offsetMs: number;
}

/** Appends one decoded record to the store; `offset` is where the record starts in `bytes`. */
export type RecordDecoder =
  & ((
    view: DataView,
    bytes: Uint8Array,
    offset: number,
    size: number,
  ) => void)
  & {
    /** Called after every drained batch: work a decoder batches up is finished here. */
    flush?: () => void;
  };

/**
 * Where a {@linkcode BatchDecoder} takes records from: a mapped ring (records are released as
 * they are stored) or bytes laid out as {@linkcode RingBuffer.drain} writes them.
 */
export type RecordSource = RingBuffer | Uint8Array;

/** What one call of a {@linkcode BatchDecoder} did. */
export interface BatchResult {
  /** Events stored. */
  events: number;
  /** Records that could not be decoded (counted, not stored). */
  rejected: number;
  /** Why the first rejected record was, when there was one. */
  error?: string;
}

/** Moves every record `source` holds now into the store. */
export type BatchDecoder = (source: RecordSource) => BatchResult;

/** The server itself, so programs can leave out its own activity. */
export interface SelfInfo {
  pid: number;
  /** The HTTP port it listens on (0 before it listens). */
  port: number;
  /** Inode number of its network namespace. */
  netns: number;
}

/** What a decoder gets bound to when its program loads. */
export interface DecoderContext<S extends ColumnSpec> {
  obj: BpfObject;
  store: Store;
  table: EventTable<S>;
  clock: Clock;
  /**
   * Event fields this kernel cannot give (a feature it lacks, an optional hook not attached):
   * their values are unknown and answer null, not zero.
   */
  unknownFields?: ReadonlySet<string>;
}

/** A monitoring program. `S` is the set of store columns beyond `ts`, `pid` and `comm`. */
export interface Program<S extends ColumnSpec = ColumnSpec> {
  /** Same everywhere: `bpf/<name>.bpf.c`, `/api/programs/<name>`, the events' `type`. */
  readonly name: string;
  readonly description: string;
  /** Columns of its table in the store. */
  readonly columns: S;
  /** The JSON shape of one event (documents it in the OpenAPI document, too). */
  readonly eventSchema: z.ZodType;
  /** The JSON shape of its summary. */
  readonly summarySchema: z.ZodType;
  /**
   * BPF programs of its object that it runs without, each with the event fields it fills: a
   * hook the kernel lacks (or refuses) is left out, and those fields are unknown (null).
   */
  readonly optionalHooks?: Readonly<Record<string, readonly string[]>>;
  /** What it looks for in the kernel's BTF, and what it does without (`/api/capabilities`). */
  readonly kernelFeatures?: readonly KernelFeature[];
  /**
   * The filters its list, summary, stream and top routes take beyond pid, command and time
   * (`unit`, `destination`, `result`, ...), each a test over its columns.
   */
  readonly filters?: Readonly<Record<string, FilterField>>;
  /** What `GET /api/programs/<name>/top?by=` groups by. */
  readonly groups?: Readonly<Record<string, GroupField>>;
  /** Which rows are failures (top-k counts them per group), if the program has them. */
  failed?(table: EventTable<S>): (slot: number) => boolean;
  /** Sets `const volatile` settings and map sizes before load (beyond those the manager sets). */
  configure?(obj: BpfObject, self: SelfInfo): void;
  /**
   * Binds a decoder of one record at a time to the loaded object's layout (read from its BTF).
   * A program gives this or {@linkcode Program.batchDecoder}.
   */
  decoder?(ctx: DecoderContext<S>): RecordDecoder;
  /** Binds a decoder of whole batches (connection's has the shim write the columns in C). */
  batchDecoder?(ctx: DecoderContext<S>): BatchDecoder;
  /**
   * Binds a function the manager calls about once a second while the program runs (and once as
   * it stops) to read kernel counters into `store.counters(name)`.
   */
  sampler?(ctx: DecoderContext<S>): (now: number) => void;
  /** Its Prometheus metric families, from counts kept at ingest (never from the bounded store). */
  metrics?(store: Store, cap: LabelCap): MetricFamily[];
  /**
   * Bytes of its ring buffer by default (a power of two; 16 MiB when absent): a program with few
   * events needs less kernel memory. `--ring-size` sets every program's.
   */
  ringSize?: number;
  /** Extra routes beyond the generated ones (registered by the HTTP layer). */
  routes?(app: OpenAPIHono, ctx: AppContext): void;
  /** One stored event as JSON. */
  toJson(table: EventTable<S>, slot: number, store: Store): Record<string, unknown>;
  /** The summary over the rows that match `query`. */
  summarize(table: EventTable<S>, query: SummaryQuery, store: Store): Record<string, unknown>;
  /**
   * The same summary made in slices that yield through `slicer` (for programs whose summary
   * can take long: the HTTP layer uses it when given).
   */
  summarizeSliced?(
    table: EventTable<S>,
    query: SummaryQuery,
    store: Store,
    slicer: Slicer,
  ): Promise<Record<string, unknown>>;
}

/** Keeps a program's column types when it is put in the untyped list. */
export function defineProgram<S extends ColumnSpec>(program: Program<S>): Program {
  return program as unknown as Program;
}

/**
 * `GET /api/events/stream`: new events as server-sent events, with the filters of /api/events.
 * Each client has a bounded queue: when it reads too slowly, events are skipped and counted,
 * and a `missed` event tells it how many. Events evicted from the store before a client got
 * them count as missed whatever its filter (they are gone; the filter cannot be applied), so
 * the count says how many it may have missed. Disconnecting frees everything.
 *
 * @module
 */

import { compileWhere, type Where } from "../programs/filter.ts";
import type { Program } from "../programs/program.ts";
import type { EventTable } from "../store/mod.ts";
import type { AppContext } from "./service.ts";

/** Bytes queued per client before events are skipped. */
export const STREAM_QUEUE_BYTES = 1 << 20;
const KEEPALIVE_MS = 15_000;
const encoder = new TextEncoder();

export interface StreamFilter {
  types: string[];
  pid?: number;
  command?: string;
  /** Field filters (a program without one of its fields sends nothing). */
  where?: Where;
}

interface Client {
  filter: StreamFilter;
  controller: ReadableStreamDefaultController<Uint8Array>;
  cursors: Map<string, number>;
  /** Compiled field filters per table, with the columns they were compiled over. */
  matches: Map<string, { cols: unknown; match: ((slot: number) => boolean) | null }>;
  missed: number;
  missedSent: number;
  lastWrite: number;
}

/** The live clients of one app, fed after every drain. */
export class StreamHub {
  readonly #ctx: AppContext;
  readonly #clients = new Set<Client>();
  #unsubscribe: (() => void) | null = null;
  #missedTotal = 0;

  constructor(ctx: AppContext) {
    this.#ctx = ctx;
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Events skipped for slow clients since start. */
  get missedTotal(): number {
    return this.#missedTotal;
  }

  /** A new client's response body: events appended from now on. */
  open(filter: StreamFilter, signal?: AbortSignal): ReadableStream<Uint8Array> {
    // events still in the kernel's rings happened before this client came: take them in first
    this.#ctx.manager.drain();
    let client: Client;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const cursors = new Map<string, number>();
        for (const name of filter.types) {
          cursors.set(name, this.#ctx.store.get(name)?.appended ?? 0);
        }
        client = {
          filter,
          controller,
          cursors,
          matches: new Map(),
          missed: 0,
          missedSent: 0,
          lastWrite: Date.now(),
        };
        controller.enqueue(
          encoder.encode(`: ebpf-server event stream (${filter.types.join(",")})\n\n`),
        );
        this.#clients.add(client);
        this.#unsubscribe ??= this.#ctx.manager.onDrain(() => this.#feed());
      },
      cancel: () => this.#close(client),
    }, new ByteLengthQueuingStrategy({ highWaterMark: STREAM_QUEUE_BYTES }));
    signal?.addEventListener("abort", () => this.#close(client));
    return stream;
  }

  #close(client: Client | undefined): void {
    if (!client || !this.#clients.delete(client)) return;
    try {
      client.controller.close();
    } catch {
      // already closed by the other side
    }
    if (this.#clients.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
    }
  }

  #feed(): void {
    const now = Date.now();
    for (const client of this.#clients) {
      try {
        this.#feedClient(client, now);
      } catch {
        this.#close(client);
      }
    }
  }

  #feedClient(client: Client, now: number): void {
    const { store, programs } = this.#ctx;
    const { controller, filter } = client;
    const comm = filter.command === undefined ? -1 : store.strings.find(filter.command);
    for (const [name, cursor] of client.cursors) {
      const table = store.get(name);
      if (!table || table.appended === cursor) continue;
      const program = programs.get(name)!;
      let compiled = client.matches.get(name);
      if (!compiled || compiled.cols !== table.cols) {
        // the columns move once (to the table's full size): compile again over the new ones
        const match = compileWhere(program.filters, table, store, filter.where);
        client.matches.set(name, compiled = { cols: table.cols, match });
      }
      const match = compiled.match;
      const first = table.appended - table.length; // oldest row still held
      let seq = cursor;
      if (seq < first) {
        this.#skip(client, first - seq); // evicted before this client was fed
        seq = first;
      }
      for (; seq < table.appended; seq++) {
        const slot = table.slot(seq - first);
        if (filter.pid !== undefined && table.cols.pid[slot] !== filter.pid) continue;
        if (filter.command !== undefined && table.cols.comm[slot] !== comm) continue;
        if (match !== null && !match(slot)) continue;
        if ((controller.desiredSize ?? 0) <= 0) {
          this.#skip(client, 1);
          continue;
        }
        this.#send(client, program, table, slot);
      }
      client.cursors.set(name, seq);
    }
    if (client.missed > client.missedSent && (controller.desiredSize ?? 0) > 0) {
      controller.enqueue(encoder.encode(`event: missed\ndata: {"missed":${client.missed}}\n\n`));
      client.missedSent = client.missed;
      client.lastWrite = now;
    }
    if (now - client.lastWrite > KEEPALIVE_MS && (controller.desiredSize ?? 0) > 0) {
      controller.enqueue(encoder.encode(": keepalive\n\n"));
      client.lastWrite = now;
    }
  }

  #send(client: Client, program: Program, table: EventTable, slot: number): void {
    const json = JSON.stringify(program.toJson(table, slot, this.#ctx.store));
    client.controller.enqueue(encoder.encode(`event: ${program.name}\ndata: ${json}\n\n`));
    client.lastWrite = Date.now();
  }

  #skip(client: Client, n: number): void {
    client.missed += n;
    this.#missedTotal += n;
  }
}

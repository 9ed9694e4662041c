/**
 * `GET /api/events/stream`: new events as server-sent events, with the filters of /api/events.
 * At most `maxClients` clients at once (`--web.max-streams`). Each client has a bounded queue:
 * when it is full, every event until the next feed is skipped at once and counted (O(1) per
 * feed, whatever the number of events), and a `missed` event tells it how many. Events skipped
 * that way, and events evicted from the store before a client got them, count as missed
 * whatever its filter (the filter is not applied to them), so the count says how many it may
 * have missed. Disconnecting frees everything.
 *
 * @module
 */

import { compileWhere, type Where } from "../programs/filter.ts";
import { DEFAULT_MAX_STREAMS } from "./limits.ts";
import type { AppContext } from "./service.ts";

/** Bytes queued per client before events are skipped. */
export const STREAM_QUEUE_BYTES = 256 * 1024;
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

  readonly #maxClients: number;

  constructor(ctx: AppContext, options: { maxClients?: number } = {}) {
    this.#ctx = ctx;
    this.#maxClients = options.maxClients ?? DEFAULT_MAX_STREAMS;
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Events skipped for slow clients since start. */
  get missedTotal(): number {
    return this.#missedTotal;
  }

  /** Clients refused because {@linkcode StreamHub.maxClients} were connected, since start. */
  refused = 0;

  /** Clients at once; {@linkcode StreamHub.open} refuses more. */
  get maxClients(): number {
    return this.#maxClients;
  }

  /**
   * A new client's response body: events appended from now on; null (and counted) when
   * {@linkcode StreamHub.maxClients} are connected already.
   */
  open(filter: StreamFilter, signal?: AbortSignal): ReadableStream<Uint8Array> | null {
    if (this.#clients.size >= this.#maxClients) {
      this.refused++;
      return null;
    }
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
    // each event is made into its message once per feed, whatever the number of clients
    const messages = new Map<string, Map<number, Uint8Array>>();
    for (const client of this.#clients) {
      try {
        this.#feedClient(client, now, messages);
      } catch {
        this.#close(client);
      }
    }
  }

  /**
   * Appends a client's new events to its queue as one chunk (one write to its connection per
   * feed, not one per event), up to the room its queue has; beyond it everything up to the
   * newest event is skipped at once.
   */
  #feedClient(
    client: Client,
    now: number,
    messages: Map<string, Map<number, Uint8Array>>,
  ): void {
    const { store, programs } = this.#ctx;
    const { controller, filter } = client;
    const comm = filter.command === undefined ? -1 : store.strings.find(filter.command);
    const room = controller.desiredSize ?? 0;
    const out: Uint8Array[] = [];
    let size = 0;
    for (const [name, cursor] of client.cursors) {
      const table = store.get(name);
      if (!table || table.appended === cursor) continue;
      const program = programs.get(name)!;
      let made = messages.get(name);
      if (!made) messages.set(name, made = new Map());
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
        if (size >= room) {
          // its queue is full: everything up to now is skipped at once, whatever the filter
          // (O(1), not a filter test per event and client)
          this.#skip(client, table.appended - seq);
          seq = table.appended;
          break;
        }
        const slot = table.slot(seq - first);
        if (filter.pid !== undefined && table.cols.pid[slot] !== filter.pid) continue;
        if (filter.command !== undefined && table.cols.comm[slot] !== comm) continue;
        if (match !== null && !match(slot)) continue;
        let message = made.get(seq);
        if (!message) {
          const json = JSON.stringify(program.toJson(table, slot, store));
          made.set(seq, message = encoder.encode(`event: ${program.name}\ndata: ${json}\n\n`));
        }
        out.push(message);
        size += message.length;
      }
      client.cursors.set(name, seq);
    }
    if (out.length > 0) {
      controller.enqueue(out.length === 1 ? out[0] : concat(out, size));
      client.lastWrite = now;
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

  #skip(client: Client, n: number): void {
    client.missed += n;
    this.#missedTotal += n;
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

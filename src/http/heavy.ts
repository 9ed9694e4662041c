/**
 * Heavy queries (event lists, summaries, open connections) cannot starve light ones (`/health`,
 * `/metrics`, control): they run one at a time, each waits its turn in a bounded queue (429
 * beyond it), and long scans give the event loop back every few milliseconds
 * ({@linkcode TimeSlice}), so a `/health` that arrives meanwhile is answered between slices.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { HEAVY_CONCURRENCY, HEAVY_QUEUE } from "./limits.ts";

/** Milliseconds of work between two yields to the event loop. */
export const SLICE_MS = 8;

/**
 * Lets the event loop run: pending I/O (new requests) is served before the caller continues.
 * A zero timeout, measured: `setImmediate` and `MessageChannel` yield too, but let Deno run
 * hundreds of them before it polls sockets again.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Cuts a long loop into slices of about {@linkcode SLICE_MS}: `if (slice.due()) await slice.next();`. */
export class TimeSlice {
  #start = performance.now();
  #calls = 0;
  readonly #ms: number;

  constructor(ms = SLICE_MS) {
    this.#ms = ms;
  }

  /** Whether this slice is used up (checks the clock every 64 calls). */
  due(): boolean {
    return (++this.#calls & 63) === 0 && performance.now() - this.#start >= this.#ms;
  }

  /** Yields to the event loop and starts a new slice. */
  async next(): Promise<void> {
    await yieldToEventLoop();
    this.#start = performance.now();
  }
}

/** A counting semaphore with a bounded queue. */
export class Gate {
  #running = 0;
  readonly #queue: (() => void)[] = [];
  readonly #concurrency: number;
  readonly #maxQueue: number;
  /** Requests refused because the queue was full, since start. */
  refused = 0;

  constructor(concurrency = HEAVY_CONCURRENCY, maxQueue = HEAVY_QUEUE) {
    this.#concurrency = concurrency;
    this.#maxQueue = maxQueue;
  }

  /** Queries running now. */
  get running(): number {
    return this.#running;
  }

  /** Queries waiting now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Waits for a turn; false (and counted) when the queue is full. */
  async enter(): Promise<boolean> {
    if (this.#running < this.#concurrency) {
      this.#running++;
      return true;
    }
    if (this.#queue.length >= this.#maxQueue) {
      this.refused++;
      return false;
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
    return true;
  }

  /** Ends a turn: the next waiter runs after the event loop has had its turn. */
  leave(): void {
    const next = this.#queue.shift();
    if (!next) {
      this.#running--;
      return;
    }
    setTimeout(next, 0);
  }
}

/** Routes that are light: answered at once, never behind a heavy query. */
const LIGHT =
  /^\/(health|metrics|openapi\.json|docs(\/.*)?|api\/programs|api\/drop-reasons|api\/events\/stream|api\/programs\/[^/]+\/(start|stop))$/;

/** The middleware: every `/api/` route that is not light runs through `gate`. */
export function heavyQueries(gate: Gate): MiddlewareHandler {
  return async (c, next) => {
    const path = c.req.path;
    if (!path.startsWith("/api/") || LIGHT.test(path)) return await next();
    if (!(await gate.enter())) {
      return c.json(
        { error: "too many heavy queries are waiting; try again in a moment" },
        429,
        { "retry-after": "1" },
      );
    }
    try {
      await next();
    } finally {
      gate.leave();
    }
  };
}

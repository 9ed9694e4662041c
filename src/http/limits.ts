/**
 * The limits that keep one client from taking the server down, in one place: connections,
 * timeouts, body size, stream clients and heavy queries. The HTTP server (src/server/listen.ts),
 * the guard (guard.ts), the stream hub (stream.ts) and the heavy-query gate (heavy.ts) read them.
 *
 * @module
 */

/** Connections held at once by default (`--web.max-connections`). */
export const DEFAULT_MAX_CONNECTIONS = 512;
/**
 * File descriptors kept free for everything that is not a client connection (BPF objects, maps,
 * rings, links, the shim, files read at run time): the connection cap is at most the process's
 * open-file limit minus this.
 */
export const FD_RESERVE = 128;
/** The smallest connection cap the server runs with (below it, it refuses to start). */
export const MIN_CONNECTIONS = 16;

/** A request's line and headers must arrive within this (slowloris), ms. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A whole request, headers and body, must arrive within this, ms. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** A kept-alive connection with no request in flight is closed after this, ms. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A response write the client does not take (it stopped reading) is given up after this, ms. */
export const SEND_TIMEOUT_MS = 60_000;
/** How often the timeouts above are checked, ms. */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** Request line plus headers, bytes: beyond it the answer is 431. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Request body, bytes: beyond it the answer is 413 (the largest real body is a few dozen). */
export const MAX_BODY_BYTES = 64 * 1024;

/** Clients of /api/events/stream at once by default (`--web.max-streams`). */
export const DEFAULT_MAX_STREAMS = 16;

/** Heavy queries (event lists, summaries, open connections) run one at a time. */
export const HEAVY_CONCURRENCY = 1;
/** Heavy queries waiting for their turn; beyond it the answer is 429. */
export const HEAVY_QUEUE = 64;

/** Basic-auth passwords checked at once off the main thread; beyond it the answer is 429. */
export const BCRYPT_QUEUE = 16;

/** After SIGTERM or SIGINT the process exits within this whatever is running, ms. */
export const SHUTDOWN_DEADLINE_MS = 1_500;

/**
 * The process's soft limit of open files (`ulimit -n`), from /proc/self/limits; null when it
 * cannot be read or is unlimited.
 */
export function openFileLimit(limits = "/proc/self/limits"): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(limits);
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m || m[1] === "unlimited") return null;
  return Number(m[1]);
}

/**
 * The connection cap: what was asked, but at most the open-file limit minus
 * {@linkcode FD_RESERVE}, so that accepting a connection never fails for want of a descriptor.
 */
export function connectionCap(
  wanted: number,
  fdLimit: number | null,
): { cap: number; limitedBy: "flag" | "fd_limit" } {
  if (fdLimit === null || wanted <= fdLimit - FD_RESERVE) return { cap: wanted, limitedBy: "flag" };
  return { cap: Math.max(0, fdLimit - FD_RESERVE), limitedBy: "fd_limit" };
}

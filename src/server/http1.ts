/**
 * A small, strict HTTP/1.1 server for one connection: requests parsed from a byte stream,
 * handed to a fetch handler as `Request`s, answered from `Response`s. It exists because the
 * server must own its connections (see listen.ts): `Deno.serve` cannot be given a connection,
 * and Deno's `node:http` server, given one, closes it after a response.
 *
 * What it accepts is deliberately narrow, so that what it does not understand is refused, never
 * guessed at: origin-form targets (`/path?query`), one `Host`, bodies with `Content-Length` only
 * (no `Transfer-Encoding`: 411), no obsolete line folding, header names that are tokens, at
 * most {@linkcode MAX_HEADER_BYTES} of request line and headers (431) and
 * {@linkcode MAX_BODY_BYTES} of body (413). Responses carry `Content-Length`, or, for event
 * streams, chunked encoding written as the client takes it.
 *
 * @module
 */

import { STATUS_CODES } from "node:http";
import { MAX_BODY_BYTES, MAX_HEADER_BYTES } from "../http/limits.ts";

/** Bytes in and out of one connection, plain TCP or TLS. */
export interface ByteStream {
  /** Reads into `buffer`; resolves with the count, or null at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `data`; resolves once the connection has taken it. */
  write(data: Uint8Array): Promise<void>;
  /** Closes the connection (idempotent). */
  close(): void;
}

/** What the connection's owner sees of its progress, for timeouts. */
export interface ConnectionState {
  /** `idle` (between requests), `head` (request line and headers arriving), `body`, `handler`, `send`. */
  phase: "idle" | "head" | "body" | "handler" | "send";
  /** When the current phase began (performance.now()). */
  since: number;
  /** Requests answered on this connection. */
  requests: number;
  /** When the write in progress began, or null: a client that stops reading stalls it. */
  writeSince: number | null;
}

/** Options of {@linkcode serveConnection}. */
export interface ServeConnectionOptions {
  /** `http` or `https`: the scheme of the `Request` URLs. */
  scheme: "http" | "https";
  /** Host for requests without a `Host` header (HTTP/1.0). */
  defaultHost: string;
  /** Updated as the connection moves through its phases. */
  state: ConnectionState;
  /** Counts a request refused with 413. */
  onTooLarge?: () => void;
}

const CRLF2 = [13, 10, 13, 10];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/;
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/;
// header values: visible ASCII, space, tab and obs-text; no other control characters
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STREAMING = /^text\/event-stream/i;
const MAX_HEADERS = 100;
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** An answer the protocol layer gives by itself (malformed or oversized requests). */
class ProtocolError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function indexOfCrlf2(buf: Uint8Array, from: number, to: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < to; i++) {
    if (
      buf[i] === CRLF2[0] && buf[i + 1] === CRLF2[1] && buf[i + 2] === CRLF2[2] &&
      buf[i + 3] === CRLF2[3]
    ) return i;
  }
  return -1;
}

interface Head {
  method: string;
  target: string;
  minor: number;
  /** Header pairs in order, names as sent. */
  headers: [string, string][];
  contentLength: number;
  host: string | null;
  close: boolean;
  expectContinue: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const m = REQUEST_LINE.exec(lines[0]);
  if (!m) throw new ProtocolError(400, "malformed request line");
  const [, method, target, minorText] = m;
  const minor = Number(minorText);
  if (!target.startsWith("/")) {
    throw new ProtocolError(400, "the request target must be a path such as /health");
  }
  if (lines.length - 1 > MAX_HEADERS) {
    throw new ProtocolError(431, `more than ${MAX_HEADERS} header fields`);
  }
  const headers: [string, string][] = [];
  let contentLength = -1;
  let host: string | null = null;
  let connection = "";
  let expectContinue = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) throw new ProtocolError(400, "malformed header line");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new ProtocolError(400, "malformed header name");
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) throw new ProtocolError(400, `control character in header ${name}`);
    const lower = name.toLowerCase();
    if (lower === "content-length") {
      if (contentLength >= 0) throw new ProtocolError(400, "more than one Content-Length");
      if (!/^\d{1,15}$/.test(value)) throw new ProtocolError(400, "malformed Content-Length");
      contentLength = Number(value);
    } else if (lower === "transfer-encoding") {
      throw new ProtocolError(
        411,
        "Transfer-Encoding is not accepted: send the body with a Content-Length",
      );
    } else if (lower === "host") {
      if (host !== null) throw new ProtocolError(400, "more than one Host header");
      if (!HOST.test(value)) throw new ProtocolError(400, "malformed Host header");
      host = value;
    } else if (lower === "connection") {
      connection += `,${value.toLowerCase()}`;
    } else if (lower === "expect") {
      if (value.toLowerCase() !== "100-continue") {
        throw new ProtocolError(417, `unsupported Expect: ${value}`);
      }
      expectContinue = true;
    }
    headers.push([name, value]);
  }
  if (minor === 1 && host === null) throw new ProtocolError(400, "HTTP/1.1 needs a Host header");
  const tokens = connection.split(",").map((t) => t.trim());
  const close = minor === 0 ? !tokens.includes("keep-alive") : tokens.includes("close");
  return {
    method,
    target,
    minor,
    headers,
    contentLength: Math.max(0, contentLength),
    host,
    close,
    expectContinue,
  };
}

function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Status"}\r\n`;
}

/** The bytes of a complete response with a JSON error body. */
export function errorResponse(status: number, error: string, close = true): Uint8Array {
  const body = JSON.stringify({ error });
  return encoder.encode(
    statusLine(status) +
      `content-type: application/json\r\ncontent-length: ${encoder.encode(body).length}\r\n` +
      `x-content-type-options: nosniff\r\n${close ? "connection: close\r\n" : ""}\r\n${body}`,
  );
}

let dateSecond = 0;
let dateText = "";

/** The Date header's value, made once a second (toUTCString costs microseconds). */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

function headBytes(status: number, headers: Headers, extra: string): Uint8Array {
  let text = statusLine(status);
  headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "transfer-encoding" && name !== "connection") {
      text += `${name}: ${value}\r\n`;
    }
  });
  text += `date: ${httpDate()}\r\n${extra}\r\n`;
  return encoder.encode(text);
}

/** One chunk of chunked transfer coding: size line, data, CRLF, in one buffer. */
function chunk(data: Uint8Array): Uint8Array {
  const size = encoder.encode(`${data.length.toString(16)}\r\n`);
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size);
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Serves requests on one connection until the client closes it, asks to close it, sends
 * something malformed, or `signal` aborts. Never throws: I/O errors end the connection.
 */
export async function serveConnection(
  conn: ByteStream,
  handler: (request: Request) => Response | Promise<Response>,
  options: ServeConnectionOptions,
): Promise<void> {
  const { state } = options;
  const phase = (p: ConnectionState["phase"]) => {
    state.phase = p;
    state.since = performance.now();
  };
  const send = async (data: Uint8Array) => {
    state.writeSince = performance.now();
    try {
      await conn.write(data);
    } finally {
      state.writeSince = null;
    }
  };
  let buf: Uint8Array<ArrayBuffer> = new Uint8Array(4096);
  let start = 0; // first unconsumed byte
  let end = 0; // end of the bytes read
  const fill = async (): Promise<boolean> => {
    if (start > 0 && start === end) start = end = 0;
    if (end === buf.length) {
      const live = end - start;
      const next = new Uint8Array(live * 2 > buf.length ? buf.length * 2 : buf.length);
      next.set(buf.subarray(start, end));
      buf = next;
      start = 0;
      end = live;
    }
    const n = await conn.read(buf.subarray(end));
    if (n === null) return false;
    end += n;
    return true;
  };

  try {
    for (;;) {
      // the request line and headers
      phase("idle");
      let scanned = 0; // bytes after `start` searched already (fill may move `start`)
      let at = -1;
      while ((at = indexOfCrlf2(buf, start + scanned, end)) < 0) {
        if (end - start > MAX_HEADER_BYTES) {
          await send(errorResponse(431, "request line and headers are too large"));
          return;
        }
        scanned = end - start;
        if (!(await fill())) return;
        if (state.phase === "idle") phase("head");
        // a bare line break before a request is allowed (RFC 9112 2.2)
        while (end - start >= 2 && buf[start] === 13 && buf[start + 1] === 10) {
          start += 2;
          scanned = Math.max(0, scanned - 2);
        }
      }
      if (at - start > MAX_HEADER_BYTES) {
        await send(errorResponse(431, "request line and headers are too large"));
        return;
      }
      let head: Head;
      try {
        head = parseHead(latin1.decode(buf.subarray(start, at)));
      } catch (err) {
        if (err instanceof ProtocolError) {
          await send(errorResponse(err.status, err.message));
          return;
        }
        throw err;
      }
      start = at + 4;

      // the body
      if (head.contentLength > MAX_BODY_BYTES) {
        options.onTooLarge?.();
        await send(errorResponse(413, `the body is larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      let body: Uint8Array<ArrayBuffer> | undefined;
      if (head.contentLength > 0) {
        if (head.method === "GET" || head.method === "HEAD") {
          await send(errorResponse(400, `a ${head.method} request takes no body`));
          return;
        }
        if (head.expectContinue && end - start < head.contentLength) {
          await send(encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
        }
        phase("body");
        while (end - start < head.contentLength) {
          if (!(await fill())) return;
        }
        body = buf.slice(start, start + head.contentLength);
        start += head.contentLength;
      }

      // the answer
      phase("handler");
      const host = head.host ?? options.defaultHost;
      const aborted = new AbortController();
      let request: Request;
      try {
        request = new Request(`${options.scheme}://${host}${head.target}`, {
          method: head.method,
          headers: head.headers, // pairs: measured 15 µs a request, a Headers object 38 µs
          body,
          signal: aborted.signal,
        });
      } catch {
        await send(errorResponse(400, "malformed request"));
        return;
      }
      let response: Response;
      try {
        response = await handler(request);
      } catch {
        await send(errorResponse(500, "internal error; see the server log"));
        return;
      }
      phase("send");
      const close = head.close || response.headers.get("connection")?.toLowerCase() === "close";
      const keep = close ? "connection: close\r\n" : "";
      const isHead = head.method === "HEAD";
      const streaming = response.body !== null &&
        STREAMING.test(response.headers.get("content-type") ?? "");
      if (streaming && isHead) {
        aborted.abort();
        await response.body!.cancel();
        await send(headBytes(response.status, response.headers, keep));
      } else if (streaming) {
        const chunked = head.minor === 1;
        await send(
          headBytes(
            response.status,
            response.headers,
            chunked ? `transfer-encoding: chunked\r\n${keep}` : "connection: close\r\n",
          ),
        );
        const reader = response.body!.getReader();
        // the client sends nothing while it is streamed to: end of stream (or anything else)
        // means it went away, and the stream is cancelled at once, not at its next write
        let gone = false;
        conn.read(new Uint8Array(1)).then(() => true, () => true).then(() => {
          gone = true;
          reader.cancel().catch(() => {});
        });
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (gone) return;
            if (done) break;
            if (value.length === 0) continue;
            await send(chunked ? chunk(value) : value);
          }
        } finally {
          aborted.abort();
          reader.cancel().catch(() => {});
        }
        // the watch above holds the read side: this connection ends with its stream
        if (chunked) await send(encoder.encode("0\r\n\r\n"));
        return;
      } else {
        // the body's chunks as they are (a big answer is not joined into one more copy)
        const chunks: Uint8Array[] = [];
        let length = 0;
        if (response.body) {
          const reader = response.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            chunks.push(value);
            length += value.length;
          }
        }
        const headBuf = headBytes(
          response.status,
          response.headers,
          `content-length: ${length}\r\n${keep}`,
        );
        if (isHead || length === 0) await send(headBuf);
        else if (chunks.length === 1 && length < 65536) await send(concat(headBuf, chunks[0]));
        else {
          await send(headBuf);
          for (const chunk of chunks) await send(chunk);
        }
      }
      state.requests++;
      if (close) return;
    }
  } catch {
    // the connection failed or was closed under us: nothing more to say on it
  } finally {
    conn.close();
  }
}

/**
 * The HTTP server: connections accepted here, one at a time, with `Deno.listen`, counted and
 * capped, timed out, and served by the small HTTP/1.1 layer of http1.ts; TLS through `node:tls`
 * when the web config asks for it.
 *
 * Why not `Deno.serve`: it accepts connections itself and has no hook to count, cap or time
 * them out; an idle connection is never closed, and at the open-file limit its accept loop
 * throws EMFILE and the process exits. Why not `node:http` / `node:https` listening themselves
 * (which have `maxConnections`, `headersTimeout`, `requestTimeout`): measured under Deno 2.9.6
 * with `ulimit -n 64`, a cap of 10 and 300 connections, their accept loop stops for good once
 * the limit is touched (connections closed over the cap are freed a loop turn later, so a burst
 * still reaches it), while a `Deno.listen` loop that closes connections over the cap at once
 * never does (and its errors can be caught). Given a connection instead, Deno's `node:http`
 * server closes it after each response (measured: about 1,300 requests/s instead of 12,000).
 * TLS stays with `node:tls`: Deno's own TLS (`Deno.listenTls`) cannot ask for or verify client
 * certificates, while a `node:tls` `TLSSocket` over the accepted connection can (`requestCert`,
 * `ca`, `verifyError`), and honours `minVersion` / `maxVersion`.
 *
 * @module
 */

import { Duplex } from "node:stream";
import tls from "node:tls";
import type { Access, RequestEnv } from "../http/access.ts";
import {
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  SEND_TIMEOUT_MS,
  TIMEOUT_CHECK_INTERVAL_MS,
} from "../http/limits.ts";
import { nodeTlsVersion, type TlsSettings } from "../http/web_config.ts";
import { log } from "../log.ts";
import { type ByteStream, type ConnectionState, serveConnection } from "./http1.ts";

/** The app: a fetch handler that gets the connection's facts as its env. */
export type FetchHandler = (request: Request, env: RequestEnv) => Response | Promise<Response>;

/** What {@linkcode listen} needs. */
export interface ListenOptions {
  hostname: string;
  port: number;
  /** The web config in force (TLS material, read again for every connection). */
  access: Access;
  /** Connections held at once; more are closed as they arrive (and counted). */
  maxConnections: number;
  /** Timeouts in ms (tests shorten them); the defaults are in src/http/limits.ts. */
  timeouts?: Partial<Timeouts>;
}

/** How long a client may take, ms. */
export interface Timeouts {
  /** Between requests on a kept-alive connection. */
  idle: number;
  /** From a request's first byte (or the connection's start) to the end of its headers. */
  headers: number;
  /** From the end of the headers to the end of the body. */
  body: number;
  /** One write of the answer (a client that stopped reading). */
  send: number;
  /** How often connections are checked. */
  check: number;
}

const TIMEOUTS: Timeouts = {
  idle: KEEP_ALIVE_TIMEOUT_MS,
  headers: HEADERS_TIMEOUT_MS,
  body: REQUEST_TIMEOUT_MS,
  send: SEND_TIMEOUT_MS,
  check: TIMEOUT_CHECK_INTERVAL_MS,
};

/** Counters of the HTTP server, for /metrics. */
export interface HttpCounters {
  /** Connections open now. */
  connections: number;
  /** Connections closed at once because the cap was reached. */
  rejected: number;
  /** Connections closed because a client was too slow (headers, body, idle, or not reading). */
  timedOut: number;
  /** Requests answered 413 (body too large). */
  tooLarge: number;
  /** TLS connections refused: failed handshake, plain HTTP, or the client certificate policy. */
  tlsRefused: number;
  /** Failed accepts (e.g. EMFILE: out of file descriptors); the server waits and goes on. */
  acceptErrors: number;
}

/** A running server. */
export interface Server {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly counters: Readonly<HttpCounters>;
  /** Stops listening and closes every connection at once. */
  close(): Promise<void>;
}

interface Live {
  conn: Deno.Conn;
  state: ConnectionState;
  close(): void;
}

/** A node stream over a Deno connection, for `node:tls` to read and write. */
function duplexOf(conn: Deno.Conn): Duplex {
  let wake: (() => void) | null = null;
  const duplex = new Duplex({
    read() {
      const w = wake;
      wake = null;
      w?.();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(conn, chunk).then(() => callback(), callback);
    },
    final(callback) {
      conn.closeWrite().then(() => callback(), () => callback());
    },
    destroy(err, callback) {
      try {
        conn.close();
      } catch {
        // closed already
      }
      callback(err);
    },
  });
  (async () => {
    const buf = new Uint8Array(16384);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          duplex.push(null);
          return;
        }
        if (!duplex.push(buf.slice(0, n))) await new Promise<void>((r) => wake = r);
      }
    } catch {
      duplex.destroy();
    }
  })();
  return duplex;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await conn.write(data.subarray(done));
}

/** The bytes of a plain TCP connection. */
function plainStream(conn: Deno.Conn): ByteStream {
  let closed = false;
  return {
    read: (buffer) => conn.read(buffer),
    write: (data) => writeAll(conn, data),
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // closed already
      }
    },
  };
}

/** The bytes of a TLS connection (after the handshake). */
function tlsStream(socket: tls.TLSSocket): ByteStream {
  const chunks = socket[Symbol.asyncIterator]();
  let pending: Uint8Array | null = null;
  return {
    async read(buffer) {
      if (!pending) {
        const next = await chunks.next();
        if (next.done) return null;
        pending = next.value as Uint8Array;
      }
      const n = Math.min(buffer.length, pending.length);
      buffer.set(pending.subarray(0, n));
      pending = n === pending.length ? null : pending.subarray(n);
      return n;
    },
    write(data) {
      return new Promise<void>((resolve, reject) => {
        if (socket.destroyed) return reject(new Error("closed"));
        if (socket.write(data)) return resolve();
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          socket.destroyed ? reject(new Error("closed")) : resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    },
    close() {
      socket.destroy();
    },
  };
}

/** Whether a TLS connection meets the client certificate policy; the reason when not. */
function clientCertProblem(socket: tls.TLSSocket, settings: TlsSettings): string | null {
  if (settings.clientAuth === "NoClientCert" || settings.clientAuth === "RequestClientCert") {
    return null;
  }
  const cert = socket.getPeerCertificate() as { subject?: unknown; subjectaltname?: string };
  const given = cert !== null && cert !== undefined && cert.subject !== undefined;
  if (!given) {
    return settings.clientAuth === "VerifyClientCertIfGiven" ? null : "no client certificate";
  }
  if (settings.clientAuth !== "RequireAnyClientCert") {
    // what node's own TLS server does after a handshake with requestCert
    const error = (socket as unknown as { _handle?: { verifyError?(): { code?: string } | null } })
      ._handle?.verifyError?.();
    if (error) return `client certificate not verified: ${error.code ?? error}`;
  }
  if (settings.allowedSans) {
    const sans = (cert.subjectaltname ?? "").split(", ").map((s) =>
      s.replace(/^(DNS|IP Address|email|URI):/, "")
    );
    if (!sans.some((s) => settings.allowedSans!.includes(s))) {
      return "the client certificate has none of client_allowed_sans";
    }
  }
  return null;
}

/** The subject of a verified client certificate, `CN=...,O=...`. */
function certificateSubject(socket: tls.TLSSocket): string | undefined {
  const subject = (socket.getPeerCertificate() as unknown as { subject?: Record<string, string> })
    ?.subject;
  if (!subject) return undefined;
  return Object.entries(subject).map(([k, v]) => `${k}=${v}`).join(",");
}

/** Starts the server; it listens when this returns (throws the listen error, e.g. `Deno.errors.AddrInUse`). */
export function listen(handler: FetchHandler, options: ListenOptions): Server {
  const { access, maxConnections } = options;
  const counters: HttpCounters = {
    connections: 0,
    rejected: 0,
    timedOut: 0,
    tooLarge: 0,
    tlsRefused: 0,
    acceptErrors: 0,
  };
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const port = (listener.addr as Deno.NetAddr).port;
  const useTls = access.config?.tls != null;
  const live = new Set<Live>();
  let closing = false;

  // one sweep a second closes connections whose client is too slow
  const t = { ...TIMEOUTS, ...options.timeouts };
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of live) {
      const { phase, since, writeSince } = c.state;
      const limit = phase === "idle"
        ? t.idle
        : phase === "head"
        ? t.headers
        : phase === "body"
        ? t.body
        : Infinity;
      if (now - since > limit || (writeSince !== null && now - writeSince > t.send)) {
        counters.timedOut++;
        c.close();
      }
    }
  }, t.check);

  const serve = (entry: Live, stream: ByteStream, env: RequestEnv) =>
    serveConnection(stream, (request) => handler(request, env), {
      scheme: useTls ? "https" : "http",
      defaultHost: `${
        options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname
      }:${port}`,
      state: entry.state,
      onTooLarge: () => counters.tooLarge++,
    });

  const accepted = (conn: Deno.Conn) => {
    if (live.size >= maxConnections || closing) {
      counters.rejected++;
      try {
        conn.close();
      } catch {
        // closed already
      }
      return;
    }
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // not TCP
    }
    const remote = conn.remoteAddr as Deno.NetAddr;
    const env: RequestEnv = {
      remoteAddress: remote.hostname,
      remotePort: remote.port,
      tls: useTls,
    };
    // "head" from the start: the handshake and the first request line must come in time
    const state: ConnectionState = {
      phase: "head",
      since: performance.now(),
      requests: 0,
      writeSince: null,
    };
    let closeFn = () => {
      try {
        conn.close();
      } catch {
        // closed already
      }
    };
    const entry: Live = { conn, state, close: () => closeFn() };
    live.add(entry);
    counters.connections = live.size;
    const done = () => {
      live.delete(entry);
      counters.connections = live.size;
    };

    if (!useTls) {
      const stream = plainStream(conn);
      closeFn = () => stream.close();
      serve(entry, stream, env).finally(done);
      return;
    }
    const settings = access.config!.tls!; // read for every connection: reloads apply at once
    const min = settings.minVersion < "TLS12" ? "TLS12" : settings.minVersion;
    const socket = new tls.TLSSocket(duplexOf(conn), {
      isServer: true,
      cert: settings.cert,
      key: settings.key,
      ...(settings.ca ? { ca: settings.ca } : {}),
      requestCert: settings.clientAuth !== "NoClientCert",
      rejectUnauthorized: false, // the policy is checked below, per client_auth_type
      minVersion: nodeTlsVersion(min),
      maxVersion: nodeTlsVersion(settings.maxVersion),
    } as tls.TLSSocketOptions);
    closeFn = () => socket.destroy();
    let secured = false;
    socket.on("error", () => {
      if (!secured) counters.tlsRefused++; // plain HTTP on the TLS port, a bad handshake
      socket.destroy();
    });
    socket.on("close", () => {
      if (!secured) done();
    });
    socket.once("secure", () => {
      const problem = clientCertProblem(socket, settings);
      if (problem) {
        counters.tlsRefused++;
        log.debug("tls connection refused", { remote: remote.hostname, problem });
        socket.destroy();
        return;
      }
      secured = true;
      env.clientCertificate = settings.clientAuth === "NoClientCert"
        ? undefined
        : certificateSubject(socket);
      serve(entry, tlsStream(socket), env).finally(done);
    });
  };

  (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closing || err instanceof Deno.errors.BadResource) return;
        // EMFILE / ENFILE and the like: wait, then go on (connections close meanwhile)
        counters.acceptErrors++;
        if (counters.acceptErrors <= 3 || counters.acceptErrors % 1000 === 0) {
          log.warn("accept failed; retrying in 100 ms", {
            error: (err as Error).message,
            count: counters.acceptErrors,
          });
        }
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      accepted(conn);
    }
  })();

  return {
    hostname: options.hostname,
    port,
    tls: useTls,
    counters,
    close() {
      closing = true;
      clearInterval(sweep);
      try {
        listener.close();
      } catch {
        // closed already
      }
      for (const c of live) c.close();
      return Promise.resolve();
    },
  };
}

import assert from "node:assert/strict";
import { connect as tlsConnect } from "node:tls";
import { Access } from "../http/access.ts";
import { makePki, type TestPki } from "../http/_tls_testing.ts";
import { MAX_BODY_BYTES } from "../http/limits.ts";
import { parseWebConfig } from "../http/web_config.ts";
import { type FetchHandler, listen, type ListenOptions, type Server } from "./listen.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A server over `handler` on a free loopback port. */
function start(
  handler: FetchHandler = (req) => new Response(`${req.method} ${new URL(req.url).pathname}`),
  options: Partial<ListenOptions> = {},
): Server & AsyncDisposable {
  const access = options.access ?? new Access(null, { hostname: "127.0.0.1", port: 0 });
  const server = listen(handler, {
    hostname: "127.0.0.1",
    port: 0,
    access,
    maxConnections: 16,
    ...options,
  });
  return Object.assign(server, {
    [Symbol.asyncDispose]: async () => {
      await server.close();
      access.close();
    },
  });
}

/** Sends `bytes` on a new connection and reads until the server closes it or `ms` pass. */
async function exchange(port: number, bytes: string | Uint8Array, ms = 1500): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof bytes === "string" ? encoder.encode(bytes) : bytes);
  let out = "";
  const buf = new Uint8Array(65536);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += decoder.decode(buf.subarray(0, n));
    }
  } catch {
    // closed by the timer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
  return out;
}

function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
}

Deno.test("http/1.1: keep-alive, pipelining, HEAD and Expect: 100-continue", async () => {
  await using server = start(async (req) =>
    new Response(`${req.method} ${new URL(req.url).pathname} ${(await req.text()).length}`)
  );
  const two = await exchange(
    server.port,
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.match(two, /content-length: 8\r\n\r\nGET \/a 0HTTP\/1\.1 200 OK/);
  assert.match(two, /connection: close\r\n\r\nGET \/b 0$/);
  const head = await exchange(
    server.port,
    "HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /content-length: 9\r\n/);
  assert.ok(head.endsWith("\r\n\r\n"), "no body after the head");
  const cont = await exchange(
    server.port,
    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    300,
  );
  assert.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  const body = await exchange(
    server.port,
    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
  );
  assert.match(body, /POST \/p 5$/);
  // HTTP/1.0 closes unless asked to keep alive, and needs no Host
  const old = await exchange(server.port, "GET /o HTTP/1.0\r\n\r\n");
  assert.match(old, /GET \/o 0$/);
});

Deno.test("http/1.1: what it does not understand is refused, never guessed at", async () => {
  await using server = start();
  const cases: [string, number][] = [
    ["GARBAGE\r\n\r\n", 400],
    ["GET /x HTTP/2.0\r\nHost: x\r\n\r\n", 400],
    ["get /x HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET http://evil.example/x HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET /x HTTP/1.1\r\n\r\n", 400], // no Host
    ["GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n", 400],
    ["GET /x HTTP/1.1\r\nHost: x\r\n Folded: y\r\n\r\n", 400],
    ["GET /x HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400],
    ["GET /x HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400],
    ["POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400],
    ["POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400],
    ["POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411],
    ["GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 400],
    ["GET /x HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417],
    [`POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`, 413],
    [`GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    [`GET /x HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(120)}\r\n`, 431],
  ];
  for (const [request, status] of cases) {
    const response = await exchange(server.port, request);
    assert.equal(
      statusOf(response),
      status,
      `${JSON.stringify(request.slice(0, 60))}: ${response}`,
    );
    assert.match(response, /connection: close\r\n/);
    assert.match(response, /\r\n\r\n\{"error":"[^"]+"\}$/);
  }
  assert.equal(server.counters.tooLarge, 1);
  // the server is fine after all that
  assert.match(
    await exchange(server.port, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    /GET \/ok$/,
  );
});

Deno.test("http/1.1: event streams are chunked and written as the client takes them", async () => {
  let cancelled = false;
  await using server = start(() => {
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (n++ < 3) controller.enqueue(encoder.encode(`data: ${n}\n\n`));
      },
      cancel() {
        cancelled = true;
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const response = await exchange(server.port, "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 500);
  assert.match(response, /transfer-encoding: chunked\r\n/);
  assert.match(response, /\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n$/);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(cancelled, "the stream is cancelled when the client goes away");
});

Deno.test("connections beyond the cap are closed at once; the server stays up", async () => {
  await using server = start(undefined, { maxConnections: 4 });
  const held: Deno.Conn[] = [];
  for (let i = 0; i < 12; i++) {
    held.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(server.counters.connections, 4);
  assert.equal(server.counters.rejected, 8);
  // the rejected ones read end of stream
  const buf = new Uint8Array(16);
  assert.equal(await held[11].read(buf), null);
  for (const c of held) c.close();
  await new Promise((r) => setTimeout(r, 200));
  assert.match(
    await exchange(server.port, "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    /GET \/after$/,
  );
});

Deno.test("slow clients are cut off: idle, slow headers (slowloris), slow body, not reading", async () => {
  await using server = start(() => new Response("x".repeat(8 << 20)), {
    timeouts: { idle: 300, headers: 400, body: 400, send: 400, check: 50 },
  });
  const t0 = performance.now();
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const slowHead = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const slowBody = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const reader = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await slowBody.write(
    encoder.encode("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"),
  );
  await reader.write(encoder.encode("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")); // 8 MiB, never read
  const drip = (async () => {
    try {
      await slowHead.write(encoder.encode("GET /h HTTP/1.1\r\n"));
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 50));
        await slowHead.write(encoder.encode(`X-${i}: y\r\n`));
      }
    } catch {
      // cut off
    }
  })();
  const closed = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(1 << 16);
    try {
      while ((await conn.read(buf)) !== null) { /* drain */ }
    } catch {
      // reset
    }
    return performance.now() - t0;
  };
  const [a, b, c] = await Promise.all([closed(idle), closed(slowHead), closed(slowBody)]);
  await drip;
  assert.ok(a < 1500 && b < 1500 && c < 1500, `closed after ${a}, ${b}, ${c} ms`);
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(server.counters.timedOut >= 4, `timed out: ${server.counters.timedOut}`);
  for (const conn of [idle, slowHead, slowBody, reader]) {
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
});

let pki: TestPki | undefined;

Deno.test("TLS: client certificates by client_auth_type, plain HTTP gets no data", async () => {
  pki ??= await makePki();
  const { dir } = pki;
  const config = (auth: string) =>
    parseWebConfig(
      [
        "tls_server_config:",
        "  cert_file: server.crt",
        "  key_file: server.key",
        ...(auth === "NoClientCert" ? [] : ["  client_ca_file: ca.crt"]),
        `  client_auth_type: ${auth}`,
        "",
      ].join("\n"),
      { path: `${dir}/web.yml` },
    );
  const get = (port: number, cert?: { cert: string; key: string }) =>
    new Promise<string>((resolve) => {
      let out = "";
      const socket = tlsConnect({
        host: "127.0.0.1",
        port,
        ca: pki!.ca.cert,
        servername: "localhost",
        ...(cert ?? {}),
      }, () => socket.write("GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
      socket.on("data", (d) => out += d);
      socket.on("error", () => resolve(out || "refused"));
      socket.on("close", () => resolve(out || "refused"));
    });
  const expect: Record<string, [boolean, boolean, boolean]> = {
    // none, the CA's client, the stranger
    NoClientCert: [true, true, true],
    RequestClientCert: [true, true, true],
    RequireAnyClientCert: [false, true, true],
    VerifyClientCertIfGiven: [true, true, false],
    RequireAndVerifyClientCert: [false, true, false],
  };
  for (const [auth, [none, client, stranger]] of Object.entries(expect)) {
    const access = new Access(config(auth), { hostname: "127.0.0.1", port: 0 });
    await using server = start((req) => new Response(new URL(req.url).protocol), { access });
    const answers: string[] = [
      await get(server.port),
      await get(server.port, pki.client),
      await get(server.port, pki.stranger),
    ];
    const ok: boolean[] = answers.map((a: string) => a.endsWith("https:"));
    assert.deepEqual(ok, [none, client, stranger], `${auth}: ${JSON.stringify(answers)}`);
    if (auth === "NoClientCert") {
      const plain = await exchange(server.port, "GET /t HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.ok(!plain.includes("HTTP/1.1 200"), `plain HTTP got: ${plain}`);
      assert.ok(!plain.includes("https:"));
    }
    assert.ok(server.counters.tlsRefused >= ok.filter((x) => !x).length);
  }
});

globalThis.addEventListener("unload", () => {
  if (pki) Deno.removeSync(pki.dir, { recursive: true });
});

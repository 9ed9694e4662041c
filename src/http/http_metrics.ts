/**
 * The `/metrics` families of the HTTP layer: connections and what was refused to keep the
 * server up (connections beyond the cap, bodies too large, TLS refusals, heavy queries and
 * stream clients beyond their limits, events skipped for slow stream clients are in
 * routes_live.ts). Nothing refused goes uncounted.
 *
 * @module
 */

import type { MetricFamily } from "../metrics/exposition.ts";
import type { AppContext } from "./service.ts";
import type { StreamHub } from "./stream.ts";

/** The HTTP layer's metric families. */
export function httpFamilies(ctx: AppContext, hub: StreamHub): MetricFamily[] {
  const http = ctx.httpCounters?.();
  const families: MetricFamily[] = [];
  if (http) {
    families.push(
      {
        name: "ebpf_server_http_connections",
        type: "gauge",
        help: "client connections open now",
        samples: [{ value: http.connections }],
      },
      {
        name: "ebpf_server_http_connections_refused_total",
        type: "counter",
        help: "connections closed at once because the cap (--web.max-connections) was reached",
        samples: [{ value: http.rejected }],
      },
      {
        name: "ebpf_server_http_connections_timed_out_total",
        type: "counter",
        help:
          "connections closed because the client was too slow (idle, headers, body, not reading)",
        samples: [{ value: http.timedOut }],
      },
      {
        name: "ebpf_server_http_accept_errors_total",
        type: "counter",
        help: "failed accepts (e.g. out of file descriptors); the server waits 100 ms and goes on",
        samples: [{ value: http.acceptErrors }],
      },
      {
        name: "ebpf_server_http_bodies_too_large_total",
        type: "counter",
        help: "requests answered 413: the body was larger than the limit",
        samples: [{ value: http.tooLarge }],
      },
      {
        name: "ebpf_server_http_tls_refused_total",
        type: "counter",
        help: "TLS connections closed by the client certificate policy or a failed handshake",
        samples: [{ value: http.tlsRefused }],
      },
    );
  }
  families.push(
    {
      name: "ebpf_server_heavy_queries_refused_total",
      type: "counter",
      help: "event lists and summaries answered 429: too many were waiting their turn",
      samples: [{ value: ctx.heavy?.refused ?? 0 }],
    },
    {
      name: "ebpf_server_stream_clients_refused_total",
      type: "counter",
      help: "stream clients answered 429: --web.max-streams were connected",
      samples: [{ value: hub.refused }],
    },
  );
  return families;
}

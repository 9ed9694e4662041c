/**
 * Who may reach what: the web config in force (re-read when one of its files changes or on
 * SIGHUP), the authenticator, and what `/health` says about exposure. The HTTP server takes its
 * TLS material from here, the guard its credentials.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import { log } from "../log.ts";
import { Authenticator } from "./auth.ts";
import {
  CLIENT_AUTH_TYPES,
  hasCredentials,
  loadWebConfig,
  type WebConfig,
  WebConfigError,
} from "./web_config.ts";

/** What the HTTP server tells the app about a request's connection (Hono's `c.env`). */
export interface RequestEnv {
  /** The peer's address as the socket reports it (`127.0.0.1`, `::1`, `::ffff:10.0.0.2`). */
  remoteAddress: string;
  remotePort: number;
  /** Whether the connection is TLS. */
  tls: boolean;
  /** The verified client certificate's subject, when one was given. */
  clientCertificate?: string;
}

/** Whether an address is a loopback address (IPv4 127/8, IPv6 ::1, or 127/8 mapped in IPv6). */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a === "::1" || a === "localhost" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(a);
}

/** The `security` field of `/health`: what is exposed, to whom. */
export const SecurityStatus = z.object({
  listen: z.string().openapi({ description: "where the server listens", example: "0.0.0.0:9090" }),
  tls: z.boolean().openapi({ description: "whether connections are TLS" }),
  client_auth_type: z.enum(CLIENT_AUTH_TYPES).nullable().openapi({
    description:
      "the client certificate policy (tls_server_config.client_auth_type); null without TLS",
  }),
  authentication: z.array(z.enum(["basic", "bearer"])).openapi({
    description: "credentials every request must carry; empty when the web config has none",
  }),
  control: z.enum(["loopback clients", "control-scope credentials"]).openapi({
    description: "who may start and stop programs",
  }),
  web_config: z.string().nullable().openapi({ description: "the --web.config.file, or null" }),
  reload_error: z.string().nullable().openapi({
    description:
      "why the last reload of the web config failed (the previous config stays), or null",
  }),
  warnings: z.array(z.string()).openapi({
    description: "listening beyond loopback without TLS, or without credentials",
  }),
}).openapi("Security");
export type SecurityStatus = z.infer<typeof SecurityStatus>;

/** The web config in force and everything derived from it. */
export class Access {
  readonly authenticator = new Authenticator();
  readonly #path: string | null;
  readonly #listen: { hostname: string; port: number };
  #config: WebConfig | null;
  #reloadError: string | null = null;
  #signature = "";
  #listeners: ((config: WebConfig) => void)[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;
  #onHup: (() => void) | null = null;

  /**
   * @param config the web config read at start (null: none)
   * @param options where the server listens (for the warnings)
   */
  constructor(config: WebConfig | null, options: { hostname: string; port: number }) {
    this.#config = config;
    this.#path = config?.path ?? null;
    this.#listen = { ...options };
    this.#signature = config ? this.#stat(config.files) : "";
  }

  /** The web config in force. */
  get config(): WebConfig | null {
    return this.#config;
  }

  /** Whether control needs credentials (they are configured) rather than a loopback client. */
  get credentialsRequired(): boolean {
    return hasCredentials(this.#config);
  }

  /** The port the server listens on, once known. */
  set port(port: number) {
    this.#listen.port = port;
  }

  /** Calls `fn` with every web config that replaces the current one. */
  onChange(fn: (config: WebConfig) => void): void {
    this.#listeners.push(fn);
  }

  /**
   * Reads the web config file again. On success it replaces the current one and the listeners
   * are told; on failure the current one stays, the error is logged and shown in `/health`.
   */
  reload(reason: string): boolean {
    if (!this.#path) return false;
    let next: WebConfig;
    try {
      next = loadWebConfig(this.#path);
      if ((next.tls === null) !== (this.#config?.tls === null)) {
        throw new WebConfigError(
          `web config ${this.#path}: turning TLS on or off needs a restart; the server keeps ${
            this.#config?.tls ? "TLS" : "plain HTTP"
          }`,
        );
      }
    } catch (err) {
      this.#reloadError = (err as Error).message;
      this.#signature = this.#stat(this.#config?.files ?? [this.#path]);
      log.error("web config not reloaded; the previous one stays", {
        reason,
        error: this.#reloadError,
      });
      return false;
    }
    this.#config = next;
    this.#reloadError = null;
    this.#signature = this.#stat(next.files);
    for (const fn of this.#listeners) fn(next);
    log.info("web config reloaded", {
      reason,
      tls: next.tls !== null,
      users: next.users.size,
      tokens: next.tokens.size,
    });
    return true;
  }

  /** Re-reads the web config when one of its files changes (checked every `intervalMs`) or on SIGHUP. */
  watch(intervalMs = 1000): void {
    if (!this.#path || this.#timer !== null) return;
    const timer = setInterval(() => {
      const files = this.#config?.files ?? [this.#path!];
      if (this.#stat(files) !== this.#signature) this.reload("a file changed");
    }, intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
    this.#onHup = () => this.reload("SIGHUP");
    Deno.addSignalListener("SIGHUP", this.#onHup);
  }

  #stat(files: string[]): string {
    return files.map((f) => {
      try {
        const s = Deno.statSync(f);
        return `${f}:${s.ino}:${s.size}:${s.mtime?.getTime()}`;
      } catch {
        return `${f}:missing`;
      }
    }).join("|");
  }

  /** What `/health` says about exposure. */
  status(): SecurityStatus {
    const config = this.#config;
    const authentication: ("basic" | "bearer")[] = [];
    if (config?.users.size) authentication.push("basic");
    if (config?.tokens.size) authentication.push("bearer");
    const { hostname, port } = this.#listen;
    return {
      listen: `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
      tls: config?.tls != null,
      client_auth_type: config?.tls?.clientAuth ?? null,
      authentication,
      control: this.credentialsRequired ? "control-scope credentials" : "loopback clients",
      web_config: this.#path,
      reload_error: this.#reloadError,
      warnings: this.warnings(),
    };
  }

  /** Listening beyond loopback without TLS, or without credentials. */
  warnings(): string[] {
    if (isLoopback(this.#listen.hostname)) return [];
    const out: string[] = [];
    const where = `listening on ${this.#listen.hostname}, beyond loopback`;
    if (!this.#config?.tls) {
      out.push(`${where}, without TLS: anyone on the path can read the answers`);
    }
    if (!this.credentialsRequired) {
      out.push(
        `${where}, without credentials: anyone who can reach the port can read every event (control stays loopback-only)`,
      );
    }
    return out;
  }

  /** Stops watching and the bcrypt worker. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#onHup) Deno.removeSignalListener("SIGHUP", this.#onHup);
    this.#onHup = null;
    this.authenticator.close();
  }
}

/**
 * Who is asking: the `Authorization` header checked against a web config's basic-auth users
 * (bcrypt, as the Prometheus exporter toolkit does) and bearer tokens (SHA-256 of the token).
 * bcrypt runs in a worker, one check at a time, and results are cached, like the toolkit's
 * cache: a scraper that sends the same password every 15 s costs one bcrypt check in all.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { BCRYPT_QUEUE } from "./limits.ts";
import type { Scope, WebConfig } from "./web_config.ts";

/** Who a request comes from, once authenticated. */
export interface Principal {
  /** How: `basic` (a user), `bearer` (a token), or `none` (no credentials are configured). */
  kind: "basic" | "bearer" | "none";
  /** The user name, `token:` and the first 8 hex digits of the token's SHA-256, or `anonymous`. */
  name: string;
  scope: Scope;
}

/** The outcome of {@linkcode Authenticator.check}. */
export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 429; reason: string };

/** bcrypt hash of a random password nobody kept: unknown users cost as much as known ones. */
const DECOY_HASH = "$2y$10$SdYiNIjf4MvarhTUC/ziFesfNBDsBqBnN23rirF0KEiGLmhNiWnHi";
const CACHE_ENTRIES = 256;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Checks passwords against bcrypt hashes in a worker, one at a time, with a bounded queue. */
class BcryptWorker {
  #worker: Worker | null = null;
  #next = 1;
  #pending = new Map<number, (ok: boolean) => void>();

  get pending(): number {
    return this.#pending.size;
  }

  compare(password: string, hash: string): Promise<boolean> {
    if (!this.#worker) {
      this.#worker = new Worker(new URL("./bcrypt_worker.ts", import.meta.url), {
        type: "module",
      });
      this.#worker.onmessage = (e: MessageEvent<{ id: number; ok: boolean }>) => {
        const resolve = this.#pending.get(e.data.id);
        this.#pending.delete(e.data.id);
        resolve?.(e.data.ok);
      };
    }
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#worker!.postMessage({ id, password, hash });
    });
  }

  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
    for (const resolve of this.#pending.values()) resolve(false);
    this.#pending.clear();
  }
}

/** Checks `Authorization` headers against the current web config. */
export class Authenticator {
  readonly #bcrypt = new BcryptWorker();
  /** sha256(user, hash, password) -> whether it matched; oldest dropped first. */
  readonly #cache = new Map<string, boolean>();

  /**
   * Checks one request's `Authorization` header. With no credentials configured everyone is
   * `none` with `read` scope (control is then limited to loopback by the guard).
   */
  async check(config: WebConfig | null, header: string | null | undefined): Promise<AuthResult> {
    if (!config || (config.users.size === 0 && config.tokens.size === 0)) {
      return { ok: true, principal: { kind: "none", name: "anonymous", scope: "read" } };
    }
    if (!header) return { ok: false, status: 401, reason: "credentials required" };
    const space = header.indexOf(" ");
    const type = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? "" : header.slice(space + 1).trim();
    if (type === "bearer" && config.tokens.size > 0 && value !== "") {
      const hash = sha256Hex(value);
      const scope = config.tokens.get(hash);
      if (scope) {
        return {
          ok: true,
          principal: { kind: "bearer", name: `token:${hash.slice(0, 8)}`, scope },
        };
      }
      return { ok: false, status: 401, reason: "unknown bearer token" };
    }
    if (type === "basic" && config.users.size > 0) {
      let decoded: string;
      try {
        decoded = new TextDecoder("utf-8", { fatal: true }).decode(
          Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0)),
        );
      } catch {
        return { ok: false, status: 401, reason: "malformed basic credentials" };
      }
      const colon = decoded.indexOf(":");
      if (colon < 0) return { ok: false, status: 401, reason: "malformed basic credentials" };
      const name = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      const user = config.users.get(name);
      const hash = user?.hash ?? DECOY_HASH;
      const key = sha256Hex(`${name}\0${hash}\0${password}`);
      let ok = this.#cache.get(key);
      if (ok === undefined) {
        if (this.#bcrypt.pending >= BCRYPT_QUEUE) {
          return { ok: false, status: 429, reason: "too many password checks in progress" };
        }
        ok = await this.#bcrypt.compare(password, hash);
        if (this.#cache.size >= CACHE_ENTRIES) {
          this.#cache.delete(this.#cache.keys().next().value!);
        }
        this.#cache.set(key, ok);
      }
      if (ok && user) return { ok: true, principal: { kind: "basic", name, scope: user.scope } };
      return { ok: false, status: 401, reason: "wrong user name or password" };
    }
    return { ok: false, status: 401, reason: `unsupported or empty '${type}' credentials` };
  }

  /** Stops the bcrypt worker (pending checks fail). */
  close(): void {
    this.#bcrypt.close();
  }
}

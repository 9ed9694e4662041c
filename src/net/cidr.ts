/**
 * IP addresses and CIDR prefixes as the filters take them: `10.0.0.0/8`, `127.0.0.1`,
 * `fd00::/8`, `::1`. Parsed into 16 bytes (IPv4 in the first 4, as the store's address columns
 * hold them) and a prefix length.
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "./address.ts";

/** A parsed prefix: `version` 4 or 6, the address bytes (4 or 16 used) and the prefix bits. */
export interface Cidr {
  version: 4 | 6;
  bytes: Uint8Array;
  bits: number;
}

/** The 4 bytes of a dotted IPv4 address, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(parts[i])) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** The 16 bytes of an IPv6 address (with `::` and a trailing dotted IPv4 allowed), or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const words = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return null;
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/**
 * An address or prefix (`a.b.c.d[/n]`, `ipv6[/n]`), or null when it is neither. Bits past the
 * prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIPv4(addr);
  const bytes = v4 ?? parseIPv6(addr);
  if (!bytes) return null;
  const version = v4 ? 4 : 6;
  const max = version === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(b) || Number(b) > max) return null;
    bits = Number(b);
  }
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    bytes[i] &= (0xff00 >> keep) & 0xff;
  }
  return { version, bytes, bits };
}

/** `10.0.0.0/8`, `127.0.0.1` (a whole address without its length), `fd00::/8`. */
export function formatCidr(c: Cidr): string {
  const ip = c.version === 4 ? formatIPv4(c.bytes) : formatIPv6(c.bytes);
  return c.bits === (c.version === 4 ? 32 : 128) ? ip : `${ip}/${c.bits}`;
}

/**
 * Whether the address of `version` in `addr` at `offset` is inside `c`. An IPv4 prefix also
 * holds IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3` of a dual-stack socket).
 */
export function cidrHolds(c: Cidr, version: number, addr: Uint8Array, offset: number): boolean {
  let at = offset;
  if (c.version === 4 && version === 6) {
    for (let i = 0; i < 10; i++) if (addr[offset + i] !== 0) return false;
    if (addr[offset + 10] !== 0xff || addr[offset + 11] !== 0xff) return false;
    at = offset + 12;
  } else if (c.version !== version) return false;
  const whole = c.bits >> 3;
  for (let i = 0; i < whole; i++) if (addr[at + i] !== c.bytes[i]) return false;
  const rest = c.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (addr[at + whole] & mask) === c.bytes[whole];
}

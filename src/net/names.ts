/**
 * Names of the kernel's numbers: address families, socket types, IP protocols and errno values
 * (Linux, x86_64 and the generic ABI).
 *
 * @module
 */

export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

const FAMILIES: Record<number, string> = {
  0: "AF_UNSPEC",
  1: "AF_UNIX",
  2: "AF_INET",
  10: "AF_INET6",
  16: "AF_NETLINK",
  17: "AF_PACKET",
  40: "AF_VSOCK",
  44: "AF_XDP",
};

const SOCKET_TYPES: Record<number, string> = {
  1: "STREAM",
  2: "DGRAM",
  3: "RAW",
  4: "RDM",
  5: "SEQPACKET",
  6: "DCCP",
  10: "PACKET",
};

const IP_PROTOCOLS: Record<number, string> = {
  0: "IP",
  1: "ICMP",
  2: "IGMP",
  6: "TCP",
  17: "UDP",
  33: "DCCP",
  41: "IPV6",
  47: "GRE",
  58: "ICMPV6",
  132: "SCTP",
  136: "UDPLITE",
  255: "RAW",
  262: "MPTCP",
};

const ERRNO: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  22: "EINVAL",
  24: "EMFILE",
  88: "ENOTSOCK",
  91: "EPROTOTYPE",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  106: "EISCONN",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  112: "EHOSTDOWN",
  113: "EHOSTUNREACH",
  114: "EALREADY",
  115: "EINPROGRESS",
};

/** `AF_INET`, ... or `AF_<n>` for a family without a name here. */
export function familyName(family: number): string {
  return FAMILIES[family] ?? `AF_${family}`;
}

/** The number of a family named by {@linkcode familyName} (`AF_INET` is 2, `AF_42` is 42). */
export function familyNumber(name: string): number {
  for (const [number, known] of Object.entries(FAMILIES)) if (known === name) return Number(number);
  const m = /^AF_(\d+)$/.exec(name);
  if (!m) throw new RangeError(`no address family named '${name}'`);
  return Number(m[1]);
}

/** `STREAM`, `DGRAM`, ... or null when no socket was found. */
export function socketTypeName(type: number): string | null {
  if (type === 0) return null;
  return SOCKET_TYPES[type] ?? `TYPE_${type}`;
}

/**
 * The protocol of a socket of `family`: IP protocol names for AF_INET/AF_INET6, `UNIX` for
 * AF_UNIX sockets, `PROTO_<n>` otherwise.
 */
export function protocolName(family: number, protocol: number, socketType: number): string | null {
  if (socketType === 0) return null;
  if (family === AF_UNIX) return "UNIX";
  if (family === AF_INET || family === AF_INET6) {
    return IP_PROTOCOLS[protocol] ?? `PROTO_${protocol}`;
  }
  return protocol === 0 ? null : `PROTO_${protocol}`;
}

/** `ok` for 0, the errno name (`ECONNREFUSED`) for a negative return, or `E<n>`. */
export function resultName(ret: number): string {
  if (ret >= 0) return "ok";
  return ERRNO[-ret] ?? `E${-ret}`;
}

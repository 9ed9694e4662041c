/**
 * Link-layer protocol names (ETH_P_*) and TCP flag names.
 *
 * @module
 */

const ETHER_TYPES: Record<number, string> = {
  0x0800: "IPv4",
  0x0806: "ARP",
  0x86dd: "IPv6",
  0x8100: "VLAN",
  0x88a8: "QinQ",
  0x8847: "MPLS",
  0x0003: "ALL",
  0x0004: "802.2",
};

/** `IPv4`, `ARP`, ... or the number in hex. */
export function etherTypeName(protocol: number): string {
  return ETHER_TYPES[protocol] ?? `0x${protocol.toString(16).padStart(4, "0")}`;
}

const TCP_FLAGS = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

/** `SYN`, `ACK|RST`, ... from a TCP flags byte. */
export function tcpFlagNames(flags: number): string {
  const names = TCP_FLAGS.filter((_, bit) => flags & (1 << bit));
  return names.length ? names.join("|") : "none";
}

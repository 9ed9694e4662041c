/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The records of bpf/tcp_life.bpf.c: one per TCP connection when it closes, and one per open
 * connection when user space runs the `iter/tcp` snapshot. src/programs/tcp_life/ reads both
 * with offsets from this object's BTF. */
#ifndef __TCP_LIFE_H
#define __TCP_LIFE_H

#define TCP_LIFE_STATES 8

enum tcp_life_direction {
	TCP_LIFE_UNKNOWN = 0,
	TCP_LIFE_OUTBOUND = 1, /* this host connect()ed */
	TCP_LIFE_INBOUND = 2,  /* this host accepted it */
};

struct tcp_life_event {
	__u64 ts_ns;          /* CLOCK_BOOTTIME at close (or at the snapshot) */
	__u64 start_ns;       /* first state change seen; 0 when it began before the program */
	__u64 bytes_sent;     /* tcp_sock.bytes_acked: sent and acknowledged */
	__u64 bytes_received; /* tcp_sock.bytes_received */
	__u64 cgroup_id;      /* of the owner */
	__u64 sock_id;        /* kernel address of the struct sock; joins with connection events */
	__u32 pid;            /* owner: who connected or accepted; 0 if unknown */
	__u32 srtt_us;        /* smoothed round-trip time, microseconds */
	__u32 total_retrans;  /* segments retransmitted (tcp_sock.total_retrans) */
	__u32 sk_err;         /* the socket's pending error (ECONNREFUSED, ETIMEDOUT, ...) */
	__u16 sport;          /* local port */
	__u16 dport;          /* remote port */
	__u16 family;         /* AF_INET or AF_INET6 */
	__u8 direction;       /* enum tcp_life_direction */
	__u8 state;           /* TCP state now (TCP_CLOSE for a closed connection) */
	__u8 resets_sent;
	__u8 resets_received;
	__u8 nstates;         /* how many state changes were seen (the last 8 are in states) */
	__u8 has_owner;
	__u32 segs_out;       /* segments sent (tcp_sock.segs_out), for the retransmit rate */
	__u8 states[TCP_LIFE_STATES]; /* the last states walked, oldest first */
	__u8 saddr[16];       /* local address */
	__u8 daddr[16];       /* remote address */
	char comm[16];
};

#endif /* __TCP_LIFE_H */

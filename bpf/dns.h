/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The record bpf/dns.bpf.c emits for every DNS packet a socket of this host sends to a DNS port
 * or receives from one, in any network namespace, and the owner it remembers per socket.
 * src/programs/dns/ reads the record with offsets from this object's BTF, parses the DNS
 * message in it and pairs queries with their answers. */
#ifndef __DNS_H
#define __DNS_H

/* Bytes of a packet's DNS payload copied into the record: the classic UDP maximum. Longer
 * messages are cut here (and the cut is counted in user space). */
#define DNS_COPY 512
/* At most this many ports are DNS ports (--dns-ports). */
#define DNS_MAX_PORTS 8

enum dns_direction {
	DNS_SENT = 0,     /* egress to a DNS port: a query */
	DNS_RECEIVED = 1, /* ingress from a DNS port: an answer */
};

struct dns_event {
	__u64 ts_ns;     /* CLOCK_BOOTTIME when the packet passed the hook */
	__u64 cookie;    /* the socket's cookie: the same socket in both directions */
	__u64 cgroup_id; /* the owner's cgroup v2 id, else the socket's (bpf_skb_cgroup_id) */
	__u32 pid;       /* the owner: the process that connected or sent to a DNS port; 0 unknown */
	__u32 tid;
	__u32 uid;       /* the owner's uid, else the socket's (bpf_get_socket_uid) */
	__u32 netns;     /* inode number of the owner's network namespace, 0 if unknown */
	__u32 len;       /* bytes of transport payload (a UDP datagram, a TCP segment's data) */
	__u16 sport;     /* ports, host byte order */
	__u16 dport;
	__u16 copied;    /* bytes of that payload in data[] (at most DNS_COPY) */
	__u8 direction;  /* enum dns_direction */
	__u8 family;     /* 4 or 6 */
	__u8 protocol;   /* IPPROTO_UDP or IPPROTO_TCP */
	__u8 has_owner;
	__u16 _pad;
	__u8 saddr[16];  /* IPv4 in the first 4 bytes, or IPv6 */
	__u8 daddr[16];
	char comm[16];   /* the owner's command */
	__u8 data[DNS_COPY];
};

/* Who owns a socket that talks to a DNS port, remembered in process context (connect, sendmsg)
 * by socket cookie, so packets seen later (answers in softirq) name the process. */
struct dns_owner {
	__u64 cgroup_id;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 netns;
	char comm[16];
};

#endif /* __DNS_H */

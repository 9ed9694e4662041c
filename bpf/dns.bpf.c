// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* dns: every DNS packet that a socket of this host sends to a DNS port (a query) or receives
 * from one (an answer), in every network namespace: cgroup_skb programs on the cgroup v2 root
 * see the packets of every socket on the host, whichever namespace it lives in. The packet's
 * addresses, ports and the first DNS_COPY bytes of its payload go to user space, which parses
 * the message and pairs each query with its answer. The owner of a socket is remembered when it
 * connect()s or sends to a DNS port (cgroup/connect4/6 and cgroup/sendmsg4/6 run in the
 * caller's context there), by socket cookie, so that an answer received in softirq still names
 * the process. Parsing here is bounded: fixed headers, no loop over the message. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "dns.h"

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define UDP_HEADER 8

/* Owners of sockets that talk to a DNS port, by socket cookie (never reused while the kernel
 * runs, unlike a struct sock address). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct dns_owner);
} dns_owners SEC(".maps");

/* The DNS ports (--dns-ports, host byte order); the first dns_nports count. */
const volatile __u16 dns_ports[DNS_MAX_PORTS] = { 53 };
const volatile __u32 dns_nports = 1;

/* Keeps struct dns_event in the object's BTF for the decoder. */
const struct dns_event *unused_dns_event __attribute__((unused));

static __always_inline bool is_dns_port(__u16 port)
{
#pragma unroll
	for (int i = 0; i < DNS_MAX_PORTS; i++) {
		if (i < dns_nports && dns_ports[i] == port)
			return true;
	}
	return false;
}

/* Remembers the calling task as the owner of the socket of a connect() or sendmsg(). */
static __always_inline void remember_owner(struct bpf_sock_addr *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct dns_owner *known, owner = {};
	struct task_struct *task;

	known = bpf_map_lookup_elem(&dns_owners, &cookie);
	if (known && known->tid == (__u32)pid_tgid)
		return; /* an unconnected socket sending again */
	owner.pid = pid_tgid >> 32;
	owner.tid = (__u32)pid_tgid;
	owner.uid = (__u32)bpf_get_current_uid_gid();
	owner.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(owner.comm, sizeof(owner.comm));
	task = (struct task_struct *)bpf_get_current_task();
	owner.netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	bpf_map_update_elem(&dns_owners, &cookie, &owner, BPF_ANY);
}

/* A sock_addr program must return 1, or the call fails with EPERM. */
SEC("cgroup/connect4")
int dns_connect4(struct bpf_sock_addr *ctx)
{
	if (is_dns_port(bpf_ntohs((__u16)ctx->user_port)))
		remember_owner(ctx);
	return 1;
}

SEC("cgroup/connect6")
int dns_connect6(struct bpf_sock_addr *ctx)
{
	if (is_dns_port(bpf_ntohs((__u16)ctx->user_port)))
		remember_owner(ctx);
	return 1;
}

/* sendto()/sendmsg() with an address on an unconnected UDP socket (musl's resolver). */
SEC("cgroup/sendmsg4")
int dns_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (is_dns_port(bpf_ntohs((__u16)ctx->user_port)))
		remember_owner(ctx);
	return 1;
}

SEC("cgroup/sendmsg6")
int dns_sendmsg6(struct bpf_sock_addr *ctx)
{
	if (is_dns_port(bpf_ntohs((__u16)ctx->user_port)))
		remember_owner(ctx);
	return 1;
}

/* Whether skb may be DNS, read straight from its linear data (what every packet of the host
 * pays, so no helper call): false when it is surely not, true when it may be or when its headers
 * are not in the linear part (the helper path below then decides). */
static __always_inline bool maybe_dns(struct __sk_buff *skb, __u8 direction)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *ip = data;
	__u16 *ports;
	__u32 l4_off;
	__u8 protocol;

	if ((void *)(ip + 40) > end)
		return true;
	if ((ip[0] >> 4) == 4) {
		l4_off = (ip[0] & 0xf) * 4;
		protocol = ip[9];
	} else if ((ip[0] >> 4) == 6) {
		l4_off = 40;
		protocol = ip[6];
	} else {
		return false;
	}
	if (protocol != IPPROTO_UDP && protocol != IPPROTO_TCP)
		return false;
	ports = data + l4_off;
	if ((void *)(ports + 2) > end)
		return true;
	return is_dns_port(bpf_ntohs(direction == DNS_SENT ? ports[1] : ports[0]));
}

/* Reports skb if it is DNS: sent to a DNS port, or received from one. Always lets it pass. */
static __always_inline int dns_packet(struct __sk_buff *skb, __u8 direction)
{
	struct dns_owner *owner;
	struct dns_event *e;
	__u8 saddr[16] = {}, daddr[16] = {};
	__u32 l4_off, off, len, n;
	__u16 ports[2], sport, dport;
	__u8 first, protocol, family;
	__u64 cookie;

	if (!maybe_dns(skb, direction))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return 1;
	if ((first >> 4) == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		if (ip.frag_off & bpf_htons(0x1fff)) /* a later fragment: no ports */
			return 1;
		protocol = ip.protocol;
		family = 4;
		l4_off = (ip.ihl & 0xf) * 4;
		__builtin_memcpy(saddr, &ip.saddr, 4);
		__builtin_memcpy(daddr, &ip.daddr, 4);
	} else if ((first >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		protocol = ip6.nexthdr; /* extension headers are not walked */
		family = 6;
		l4_off = sizeof(ip6);
		__builtin_memcpy(saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
	} else {
		return 1;
	}
	if (protocol != IPPROTO_UDP && protocol != IPPROTO_TCP)
		return 1;
	if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
		return 1;
	sport = bpf_ntohs(ports[0]);
	dport = bpf_ntohs(ports[1]);
	if (!is_dns_port(direction == DNS_SENT ? dport : sport))
		return 1;
	if (protocol == IPPROTO_UDP) {
		off = l4_off + UDP_HEADER;
	} else {
		__u8 doff;

		if (bpf_skb_load_bytes(skb, l4_off + 12, &doff, 1))
			return 1;
		off = l4_off + (doff >> 4) * 4;
	}
	if (skb->len <= off)
		return 1; /* no payload: a TCP handshake or ACK */
	len = skb->len - off;

	cookie = bpf_get_socket_cookie(skb);
	owner = bpf_map_lookup_elem(&dns_owners, &cookie);
	if (owner && self_tgid && owner->pid == self_tgid)
		return 1;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 1;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cookie = cookie;
	e->len = len;
	e->sport = sport;
	e->dport = dport;
	e->direction = direction;
	e->family = family;
	e->protocol = protocol;
	e->_pad = 0;
	__builtin_memcpy(e->saddr, saddr, sizeof(saddr));
	__builtin_memcpy(e->daddr, daddr, sizeof(daddr));
	if (owner) {
		e->has_owner = 1;
		e->pid = owner->pid;
		e->tid = owner->tid;
		e->uid = owner->uid;
		e->netns = owner->netns;
		e->cgroup_id = owner->cgroup_id;
		__builtin_memcpy(e->comm, owner->comm, sizeof(e->comm));
	} else {
		e->has_owner = 0;
		e->pid = 0;
		e->tid = 0;
		e->uid = bpf_get_socket_uid(skb);
		e->netns = 0;
		e->cgroup_id = bpf_skb_cgroup_id(skb);
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	}
	/* 1..DNS_COPY bytes, in a form the verifier bounds on every kernel: len >= 1 here */
	n = len > DNS_COPY ? DNS_COPY : len;
	n = ((n - 1) & (DNS_COPY - 1)) + 1;
	if (bpf_skb_load_bytes(skb, off, e->data, n))
		n = 0;
	e->copied = n;
	bpf_ringbuf_submit(e, events_submit_flags());
	return 1;
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	return dns_packet(skb, DNS_SENT);
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	return dns_packet(skb, DNS_RECEIVED);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

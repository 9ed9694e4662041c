// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* packet_drop: every packet the kernel frees as a drop (skb:kfree_skb), with the kernel's
 * reason, the place, the flow, the device and namespace, and the socket's owner when known. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "sock_owner.h"
#include "packet_drop.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132
#define IPPROTO_UDPLITE 136
#define NO_HEADER 0xffff

/* Reasons that are no drop (SKB_NOT_DROPPED_YET, SKB_CONSUMED): numbers of the running
 * kernel, set from its BTF before load. */
const volatile __u32 reason_not_dropped = 0;
const volatile __u32 reason_consumed = 1;

/* Drops by (reason, location), counted whether or not the event fits in the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct drop_key);
	__type(value, __u64);
} drop_counts SEC(".maps");

/* Drops not counted in drop_counts because it was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts_overflow SEC(".maps");

/* Keeps both structs in the object's BTF for the decoder. */
const struct packet_drop_event *unused_packet_drop_event __attribute__((unused));
const struct drop_key *unused_drop_key __attribute__((unused));

static __always_inline void count_drop(__u32 reason, __u64 location)
{
	struct drop_key key = { .location = location, .reason = reason };
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&drop_counts, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (bpf_map_update_elem(&drop_counts, &key, &one, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(&drop_counts, &key); /* raced with another CPU */
		if (n) {
			__sync_fetch_and_add(n, 1);
		} else {
			__u32 zero = 0;
			__u64 *over = bpf_map_lookup_elem(&counts_overflow, &zero);

			if (over)
				*over += 1;
		}
	}
}

/* Fills ports and TCP flags from the transport header at head + off. */
static __always_inline void read_ports(struct packet_drop_event *e, unsigned char *head, __u16 off)
{
	__u16 ports[2];

	if (e->l4_protocol != IPPROTO_TCP && e->l4_protocol != IPPROTO_UDP &&
	    e->l4_protocol != IPPROTO_SCTP && e->l4_protocol != IPPROTO_UDPLITE)
		return;
	if (bpf_probe_read_kernel(ports, sizeof(ports), head + off))
		return;
	e->sport = bpf_ntohs(ports[0]);
	e->dport = bpf_ntohs(ports[1]);
	if (e->l4_protocol == IPPROTO_TCP)
		bpf_probe_read_kernel(&e->tcp_flags, 1, head + off + 13);
}

/* Addresses, L4 protocol and ports from the packet's headers. */
static __always_inline void read_flow(struct packet_drop_event *e, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u8 first;

	if (!head || nh == NO_HEADER || bpf_probe_read_kernel(&first, 1, head + nh))
		return;
	if (e->protocol == ETH_P_IP && (first >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return;
		e->ip_version = 4;
		e->l4_protocol = ip.protocol;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
		/* A transport header not set yet (or still at the IP header) is right after it. */
		if (th == NO_HEADER || th <= nh)
			th = nh + (ip.ihl & 0xf) * 4;
		read_ports(e, head, th);
	} else if (e->protocol == ETH_P_IPV6 && (first >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return;
		e->ip_version = 6;
		e->l4_protocol = ip6.nexthdr;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
		if (th == NO_HEADER || th <= nh)
			th = nh + sizeof(ip6); /* extension headers are not walked */
		read_ports(e, head, th);
	}
}

SEC("tracepoint/skb/kfree_skb")
int packet_drop(struct trace_event_raw_kfree_skb *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct sk_buff *skb = ctx->skbaddr;
	struct sock_owner *owner = NULL;
	struct packet_drop_event *e;
	struct net_device *dev;
	struct sock *sk = NULL;
	__u32 reason = DROP_REASON_UNKNOWN;
	__u64 location = (__u64)ctx->location;

	/* The field (and the tracepoint's calls for packets that were not dropped) came with
	 * drop reasons; before, kfree_skb was only called for drops and consume_skb otherwise. */
	if (bpf_core_field_exists(ctx->reason)) {
		reason = ctx->reason;
		if (reason == reason_not_dropped || reason == reason_consumed)
			return 0;
	}
	count_drop(reason, location);

	if (bpf_core_field_exists(ctx->rx_sk))
		sk = ctx->rx_sk;
	if (!sk)
		sk = BPF_CORE_READ(skb, sk);
	owner = lookup_owner(sk);
	/* The server's own packets are not reported: by owner when known, else by context
	 * (a timer may drop someone else's packet while the server happens to run). */
	if (self_tgid && (owner ? owner->pid : (__u32)(pid_tgid >> 32)) == self_tgid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->location = location;
	e->reason = reason;
	e->pid = pid_tgid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	e->len = BPF_CORE_READ(skb, len);
	read_flow(e, skb);

	dev = BPF_CORE_READ(skb, dev);
	if (dev) {
		e->ifindex = BPF_CORE_READ(dev, ifindex);
		BPF_CORE_READ_STR_INTO(&e->ifname, dev, name);
		e->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	if (sk && !e->netns)
		e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (owner) {
		e->has_owner = 1;
		e->owner_pid = owner->pid;
		e->owner_cgroup_id = owner->cgroup_id;
		__builtin_memcpy(e->owner_comm, owner->comm, sizeof(e->owner_comm));
	}
	bpf_ringbuf_submit(e, events_submit_flags());
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

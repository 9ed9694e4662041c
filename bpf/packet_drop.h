/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The record bpf/packet_drop.bpf.c emits for every packet the kernel drops, and the key of its
 * in-kernel drop counters. src/programs/packet_drop/ reads both with offsets from this
 * object's BTF. */
#ifndef __PACKET_DROP_H
#define __PACKET_DROP_H

struct packet_drop_event {
	__u64 ts_ns;           /* CLOCK_BOOTTIME of the drop */
	__u64 location;        /* kernel address that dropped it */
	__u64 owner_cgroup_id; /* cgroup of the socket's owner, if known */
	__u64 cgroup_id;       /* cgroup v2 id of the task in whose context the drop happened */
	__u32 reason;          /* enum skb_drop_reason of the running kernel, or DROP_REASON_UNKNOWN */
	__u32 pid;             /* task in whose context the drop happened (0: idle/softirq) */
	__u32 owner_pid;       /* process that owns the packet's socket, 0 if unknown */
	__u32 len;             /* skb->len */
	__u32 ifindex;         /* device the packet was on, 0 if none */
	__u32 netns;           /* inode number of its network namespace, 0 if unknown */
	__u16 protocol;        /* link-layer protocol (ETH_P_IP, ...), host byte order */
	__u16 sport;           /* TCP/UDP ports, host byte order */
	__u16 dport;
	__u8 l4_protocol;      /* IPPROTO_* for IP packets */
	__u8 ip_version;       /* 4, 6, or 0 when the addresses are not known */
	__u8 tcp_flags;        /* flags byte of a TCP header */
	__u8 has_owner;
	__u16 _pad1;
	__u32 _pad2;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
	char owner_comm[16];
	char ifname[16];
};

/* The reason of a drop on a kernel whose skb:kfree_skb has no `reason` field. */
#define DROP_REASON_UNKNOWN 0xffffffffu

/* Key of the drop_counts map: drops counted in the kernel, exact when the ring overflows. */
struct drop_key {
	__u64 location;
	__u32 reason;
	__u32 _pad;
};

#endif /* __PACKET_DROP_H */

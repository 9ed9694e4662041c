// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* tcp_life: one record per TCP connection once it has closed: who opened it (and which way),
 * how long it lived, bytes each way, RTT, retransmits, resets and the states it walked. The
 * record is sent when the kernel destroys the socket (tcp_destroy_sock), after a reset that
 * close() itself sends; its end time is the change to TCP_CLOSE. An `iter/tcp` program lists
 * the connections open now with the same record. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "events.h"
#include "sock_owner.h"
#include "tcp_life.h"

#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12

/* What is known of a connection while it lives, by struct sock address. */
struct life {
	__u64 start_ns;
	__u64 end_ns; /* the change to TCP_CLOSE */
	__u64 cgroup_id;
	__u32 sk_err; /* the socket's error at that change */
	__u32 pid;
	__u8 direction;
	__u8 resets_sent;
	__u8 resets_received;
	__u8 nstates;
	__u8 states[TCP_LIFE_STATES];
	__u8 has_owner;
	__u8 ignore; /* the server's own connection */
	__u16 family; /* endpoints as last seen while connected (closing may clear them) */
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
	/* tcp_sock counters at the change to TCP_CLOSE: tcp_disconnect() zeroes them after it */
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 srtt_us;
	__u32 total_retrans;
	__u32 segs_out;
	__u32 has_counters;
};

/* The server's own HTTP port and network namespace: its connections are not reported, also
 * those accepted before this program was loaded. */
const volatile __u32 self_port = 0;
const volatile __u32 self_netns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct life);
} lives SEC(".maps");

/* Keeps struct tcp_life_event in the object's BTF for the decoder. */
const struct tcp_life_event *unused_tcp_life_event __attribute__((unused));

static __always_inline void push_state(struct life *l, int state)
{
	__u32 n = l->nstates;

	if (n < TCP_LIFE_STATES) {
		l->states[n & (TCP_LIFE_STATES - 1)] = state;
	} else {
		/* keep the last ones: shift left by one */
#pragma unroll
		for (int i = 0; i < TCP_LIFE_STATES - 1; i++)
			l->states[i] = l->states[i + 1];
		l->states[TCP_LIFE_STATES - 1] = state;
	}
	if (n < 255)
		l->nstates = n + 1;
}

static __always_inline void set_owner_current(struct life *l)
{
	l->pid = bpf_get_current_pid_tgid() >> 32;
	l->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(l->comm, sizeof(l->comm));
	l->has_owner = 1;
}

static __always_inline bool is_self_port(struct sock *sk, __u16 sport)
{
	return self_port && sport == self_port &&
	       BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) == self_netns;
}

/* Counters the kernel keeps for the socket, read at close or in the snapshot. */
static __always_inline void read_counters(struct tcp_life_event *e, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	e->bytes_sent = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->segs_out = BPF_CORE_READ(tp, segs_out);
	e->sk_err = BPF_CORE_READ(sk, sk_err);
}

/* Endpoints of a live socket (the snapshot). */
static __always_inline void read_endpoints(struct tcp_life_event *e, struct sock *sk)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		bpf_core_read(e->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

static __always_inline void copy_life(struct tcp_life_event *e, struct life *l)
{
	e->start_ns = l->start_ns;
	if (l->sk_err)
		e->sk_err = l->sk_err;
	e->pid = l->pid;
	e->cgroup_id = l->cgroup_id;
	e->direction = l->direction;
	e->resets_sent = l->resets_sent;
	e->resets_received = l->resets_received;
	e->nstates = l->nstates;
	e->has_owner = l->has_owner;
	__builtin_memcpy(e->states, l->states, sizeof(e->states));
	__builtin_memcpy(e->comm, l->comm, sizeof(e->comm));
}

SEC("tracepoint/sock/inet_sock_set_state")
int tcp_life_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	int old = ctx->oldstate, new = ctx->newstate;
	struct life *l;
	__u64 key = (__u64)sk;

	if (ctx->protocol != IPPROTO_TCP || old == TCP_LISTEN || new == TCP_LISTEN)
		return 0;
	l = bpf_map_lookup_elem(&lives, &key);
	if (!l) {
		struct life fresh = {};

		if (new == TCP_SYN_SENT) {
			/* connect() runs in the caller's context */
			fresh.direction = TCP_LIFE_OUTBOUND;
			fresh.start_ns = bpf_ktime_get_boot_ns();
			if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
				fresh.ignore = 1;
			else
				set_owner_current(&fresh);
		} else if (old == TCP_SYN_RECV && new == TCP_ESTABLISHED) {
			fresh.direction = TCP_LIFE_INBOUND; /* the owner is known at accept() */
			fresh.start_ns = bpf_ktime_get_boot_ns();
		} else if (new != TCP_CLOSE || old == TCP_CLOSE) {
			return 0;
		} else if (is_self_port(sk, ctx->sport)) {
			fresh.ignore = 1; /* the server's own, accepted before the program loaded */
		} /* else: a connection older than the program closes; start unknown */
		push_state(&fresh, old);
		if (bpf_map_update_elem(&lives, &key, &fresh, BPF_ANY)) {
			count_lost();
			return 0;
		}
		l = bpf_map_lookup_elem(&lives, &key);
		if (!l)
			return 0;
	}
	push_state(l, new);
	if (ctx->dport && ctx->sport) {
		l->family = ctx->family;
		l->sport = ctx->sport;
		l->dport = ctx->dport;
		if (ctx->family == AF_INET) {
			bpf_probe_read_kernel(l->saddr, 4, ctx->saddr);
			bpf_probe_read_kernel(l->daddr, 4, ctx->daddr);
		} else {
			bpf_probe_read_kernel(l->saddr, 16, ctx->saddr_v6);
			bpf_probe_read_kernel(l->daddr, 16, ctx->daddr_v6);
		}
	}
	if (new == TCP_CLOSE) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;

		l->end_ns = bpf_ktime_get_boot_ns();
		l->sk_err = BPF_CORE_READ(sk, sk_err);
		l->bytes_sent = BPF_CORE_READ(tp, bytes_acked);
		l->bytes_received = BPF_CORE_READ(tp, bytes_received);
		l->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
		l->total_retrans = BPF_CORE_READ(tp, total_retrans);
		l->segs_out = BPF_CORE_READ(tp, segs_out);
		l->has_counters = 1;
	}
	return 0;
}

/* The socket is gone: send its record. */
SEC("tracepoint/tcp/tcp_destroy_sock")
int tcp_life_destroy(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct tcp_life_event *e;
	__u64 key = (__u64)sk;
	struct life *l;

	l = bpf_map_lookup_elem(&lives, &key);
	if (!l)
		return 0; /* a listener, or a socket that never connected */
	if (l->ignore) {
		bpf_map_delete_elem(&lives, &key);
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		bpf_map_delete_elem(&lives, &key);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = l->end_ns ? l->end_ns : bpf_ktime_get_boot_ns();
	e->sock_id = key;
	e->state = TCP_CLOSE;
	if (l->dport) {
		e->family = l->family;
		e->sport = l->sport;
		e->dport = l->dport;
		__builtin_memcpy(e->saddr, l->saddr, 16);
		__builtin_memcpy(e->daddr, l->daddr, 16);
	} else {
		/* tcp:tcp_destroy_sock gained `family` after 5.10; the socket always has it */
		if (bpf_core_field_exists(ctx->family))
			e->family = ctx->family;
		else
			e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
		e->sport = ctx->sport;
		e->dport = ctx->dport;
		if (e->family == AF_INET) {
			bpf_probe_read_kernel(e->saddr, 4, ctx->saddr);
			bpf_probe_read_kernel(e->daddr, 4, ctx->daddr);
		} else {
			bpf_probe_read_kernel(e->saddr, 16, ctx->saddr_v6);
			bpf_probe_read_kernel(e->daddr, 16, ctx->daddr_v6);
		}
	}
	read_counters(e, sk);
	if (l->has_counters) {
		e->bytes_sent = l->bytes_sent;
		e->bytes_received = l->bytes_received;
		e->srtt_us = l->srtt_us;
		e->total_retrans = l->total_retrans;
		e->segs_out = l->segs_out;
	}
	copy_life(e, l);
	if (!l->has_owner) {
		struct sock_owner *owner = lookup_owner(sk);

		if (owner) {
			e->has_owner = 1;
			e->pid = owner->pid;
			e->cgroup_id = owner->cgroup_id;
			__builtin_memcpy(e->comm, owner->comm, sizeof(e->comm));
		}
	}
	bpf_map_delete_elem(&lives, &key);
	bpf_ringbuf_submit(e, events_submit_flags());
	return 0;
}

/* The owner of an inbound connection is whoever accept()s it. */
static __always_inline int accepted(long ret)
{
	struct sock *sk;
	struct life *l;
	__u64 key;

	if (ret >= 0 && (bpf_get_current_pid_tgid() >> 32) == self_tgid) {
		/* the server's own HTTP connection: forget it */
		__u64 ino = 0;
		struct socket *sock = socket_of_fd((int)ret, &ino);

		if (sock) {
			key = (__u64)BPF_CORE_READ(sock, sk);
			l = bpf_map_lookup_elem(&lives, &key);
			if (l)
				l->ignore = 1;
		}
		return 0;
	}
	sk = remember_accepted(ret);
	if (!sk)
		return 0;
	key = (__u64)sk;
	l = bpf_map_lookup_elem(&lives, &key);
	if (l && !l->has_owner)
		set_owner_current(l);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tcp_life_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tcp_life_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

static __always_inline void count_reset(const void *skaddr, int sent)
{
	__u64 key = (__u64)skaddr;
	struct life *l;

	if (!key)
		return;
	l = bpf_map_lookup_elem(&lives, &key);
	if (!l)
		return;
	if (sent && l->resets_sent < 255)
		l->resets_sent++;
	if (!sent && l->resets_received < 255)
		l->resets_received++;
}

/* tcp:tcp_send_reset has a context of its own since 6.10 (it may have no socket); before,
 * it used the tcp_event_sk_skb class, which newer kernels no longer have (so it is not in
 * this build's vmlinux.h). Both have skaddr: the running kernel's BTF picks the layout. */
struct trace_event_raw_tcp_event_sk_skb___old {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_send_reset")
int tcp_life_send_reset(void *ctx)
{
	const void *skaddr = NULL;

	/* Read, not dereferenced: a direct ctx access in each branch compiles to one load from
	 * a computed offset, which the verifier refuses ("dereference of modified ctx ptr"). */
	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset))
		BPF_CORE_READ_INTO(&skaddr, (struct trace_event_raw_tcp_send_reset *)ctx, skaddr);
	else
		BPF_CORE_READ_INTO(&skaddr, (struct trace_event_raw_tcp_event_sk_skb___old *)ctx,
				   skaddr);
	count_reset(skaddr, 1);
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tcp_life_receive_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	count_reset(ctx->skaddr, 0);
	return 0;
}

/* The snapshot of open connections: one record per TCP socket that is not listening. */
SEC("iter/tcp")
int tcp_life_open(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_life_event e = {};
	struct tcp_sock *tp;
	struct sock *sk;
	struct life *l;
	__u64 key;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0; /* listening, TIME_WAIT and request sockets have no tcp_sock */
	sk = (struct sock *)tp;
	e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (e.state == TCP_LISTEN || e.state == TCP_CLOSE)
		return 0;
	key = (__u64)sk;
	e.ts_ns = bpf_ktime_get_boot_ns();
	e.sock_id = key;
	read_endpoints(&e, sk);
	read_counters(&e, sk);
	l = bpf_map_lookup_elem(&lives, &key);
	if (l) {
		if (l->ignore)
			return 0;
		copy_life(&e, l);
	} else if (is_self_port(sk, e.sport)) {
		return 0;
	}
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* connection: one event per completed connect(2), with what the kernel knows
 * about the socket (its real type and protocol), the destination, the return
 * value and the time spent in the call. It also remembers the owner of every
 * socket that connects or is accepted (sock_owner.h) for the other programs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "sock_owner.h"
#include "connection.h"

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define MAX_INFLIGHT 16384

/* connect() calls in progress, by thread id: the event as known at entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u32);
	__type(value, struct connection_unix_event);
} inflight SEC(".maps");

/* Per-CPU scratch space: the event is too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct connection_unix_event);
} scratch SEC(".maps");

/* Keeps both records in the object's BTF for the decoder. */
const struct connection_event *unused_connection_event __attribute__((unused));
const struct connection_unix_event *unused_connection_unix_event __attribute__((unused));

static __always_inline void read_destination(struct connection_unix_event *u,
					     const void *uaddr, int addrlen)
{
	struct connection_event *e = &u->event;
	__u16 family = 0;

	if (!uaddr || addrlen < (int)sizeof(family))
		return;
	bpf_probe_read_user(&family, sizeof(family), uaddr);
	e->family = family;
	if (family == AF_INET && addrlen >= (int)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin = {};

		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		e->port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(e->addr, &sin.sin_addr.s_addr, 4);
	} else if (family == AF_INET6 && addrlen >= (int)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6 = {};

		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		e->port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(e->addr, &sin6.sin6_addr, 16);
	} else if (family == AF_UNIX) {
		__u64 len = (__u32)addrlen - sizeof(family);

		/* A bound the verifier can follow on the very register passed on. */
		asm volatile("if %[len] <= %[max] goto +1\n\t%[len] = %[max]"
			     : [len] "+r"(len)
			     : [max] "i"(UNIX_PATH_LEN));
		e->unix_path_len = len;
		bpf_probe_read_user(u->unix_path, len, (const char *)uaddr + sizeof(family));
	}
}

SEC("tracepoint/syscalls/sys_enter_connect")
int connection_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, zero = 0;
	struct connection_unix_event *u;
	struct connection_event *e;
	struct socket *sock;
	__u64 ino = 0;

	if ((pid_tgid >> 32) == self_tgid)
		return 0;
	u = bpf_map_lookup_elem(&scratch, &zero);
	if (!u)
		return 0;
	__builtin_memset(u, 0, sizeof(*u));
	e = &u->event;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->pid = pid_tgid >> 32;
	e->tid = tid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	read_destination(u, (const void *)ctx->args[1], (int)ctx->args[2]);
	sock = socket_of_fd((int)ctx->args[0], &ino);
	if (sock) {
		struct sock *sk = BPF_CORE_READ(sock, sk);

		e->sock_type = BPF_CORE_READ(sock, type);
		e->sock_id = (__u64)sk;
		if (sk) {
			e->protocol = BPF_CORE_READ(sk, sk_protocol);
			remember_owner(sk, ino);
		}
	}
	if (bpf_map_update_elem(&inflight, &tid, u, BPF_ANY))
		count_lost();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connection_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connection_unix_event *start;
	struct connection_event *e;

	start = bpf_map_lookup_elem(&inflight, &tid);
	if (!start)
		return 0;
	/* Two constant sizes: only AF_UNIX records carry the path. */
	if (start->event.family == AF_UNIX) {
		struct connection_unix_event *u = bpf_ringbuf_reserve(&events, sizeof(*u), 0);

		if (u)
			__builtin_memcpy(u, start, sizeof(*u));
		e = u ? &u->event : NULL;
	} else {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e)
			__builtin_memcpy(e, &start->event, sizeof(*e));
	}
	bpf_map_delete_elem(&inflight, &tid);
	if (!e) {
		count_lost();
		return 0;
	}
	e->ret = (__s32)ctx->ret;
	{
		__u64 now = bpf_ktime_get_boot_ns();

		e->latency_ns = now - e->ts_ns;
		e->ts_ns = now;
	}
	bpf_ringbuf_submit(e, events_submit_flags());
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int connection_accept4(struct trace_event_raw_sys_exit *ctx)
{
	remember_accepted(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int connection_accept(struct trace_event_raw_sys_exit *ctx)
{
	remember_accepted(ctx->ret);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The records bpf/connection.bpf.c emits for every completed connect(2).
 * ffi/columns_connection.c decodes them, compiled from this header too; the server checks
 * that the struct sizes in the object's BTF are the ones it was built with. */
#ifndef __CONNECTION_H
#define __CONNECTION_H

#define TASK_COMM_LEN 16
#define UNIX_PATH_LEN 108

struct connection_event {
	__u64 ts_ns;         /* CLOCK_BOOTTIME when connect() returned */
	__u64 latency_ns;    /* time spent inside connect() */
	__u64 cgroup_id;     /* cgroup v2 id of the caller */
	__u64 sock_id;       /* kernel address of the struct sock; joins with other programs */
	__u32 pid;           /* process (thread group) id */
	__u32 tid;           /* thread id */
	__u32 uid;
	__s32 ret;           /* syscall return: 0 or -errno */
	__u16 family;        /* AF_INET, AF_INET6, AF_UNIX, ... from the sockaddr */
	__u16 port;          /* destination port, host byte order */
	__u16 sock_type;     /* SOCK_STREAM, SOCK_DGRAM, ... from the kernel's socket */
	__u16 protocol;      /* IPPROTO_TCP, IPPROTO_UDP, ... from the kernel's sock */
	__u8 addr[16];       /* IPv4 (first 4 bytes) or IPv6 destination address */
	char comm[TASK_COMM_LEN];
	__u32 unix_path_len; /* AF_UNIX: bytes of sun_path the caller passed */
};

/* An AF_UNIX connect: the event, then the path (the record is twice as long, so the common
 * IP record does not carry 108 unused bytes through the ring). */
struct connection_unix_event {
	struct connection_event event;
	char unix_path[UNIX_PATH_LEN]; /* sun_path bytes (abstract names start with NUL) */
};

#endif /* __CONNECTION_H */

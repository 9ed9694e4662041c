/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Who owns a socket, remembered in process context (connect, accept) so that an event seen
 * later in softirq (a drop, a close) can name the process. Every object that includes this
 * header shares one map: user space hands the first object's map to the others before load. */
#ifndef __EBPF_SERVER_SOCK_OWNER_H
#define __EBPF_SERVER_SOCK_OWNER_H

struct sock_owner {
	__u64 cgroup_id;
	__u64 ino;  /* the socket's inode number: guards against a reused struct sock address */
	__u32 pid;
	__u32 _pad;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock address */
	__type(value, struct sock_owner);
} sock_owner SEC(".maps");

/* The inode number of the socket file of sk, or 0. */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);

	if (!sock)
		return 0;
	return BPF_CORE_READ(sock, file, f_inode, i_ino);
}

/* Records the current task as the owner of sk. */
static __always_inline void remember_owner(struct sock *sk, __u64 ino)
{
	struct sock_owner owner = {};

	if (!sk)
		return;
	owner.pid = bpf_get_current_pid_tgid() >> 32;
	owner.cgroup_id = bpf_get_current_cgroup_id();
	owner.ino = ino;
	bpf_get_current_comm(owner.comm, sizeof(owner.comm));
	bpf_map_update_elem(&sock_owner, &sk, &owner, BPF_ANY);
}

/* The remembered owner of sk, or NULL when unknown or when the address now holds another socket. */
static __always_inline struct sock_owner *lookup_owner(struct sock *sk)
{
	struct sock_owner *owner;

	if (!sk)
		return NULL;
	owner = bpf_map_lookup_elem(&sock_owner, &sk);
	if (!owner || owner->ino != sock_ino(sk))
		return NULL;
	return owner;
}

#endif /* __EBPF_SERVER_SOCK_OWNER_H */

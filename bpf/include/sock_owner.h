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

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* The socket behind fd in the current task (and its inode number), or NULL when fd is no socket. */
static __always_inline struct socket *socket_of_fd(int fd, __u64 *ino)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	umode_t mode;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	*ino = BPF_CORE_READ(file, f_inode, i_ino);
	return BPF_CORE_READ(file, private_data);
}

/* accept() and accept4() return a new socket: remembers who owns it and returns its sock
 * (NULL for an error, no socket, or the server's own accept). */
static __always_inline struct sock *remember_accepted(long ret)
{
	struct socket *sock;
	struct sock *sk;
	__u64 ino = 0;

	if (ret < 0 || (bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return NULL;
	sock = socket_of_fd((int)ret, &ino);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	remember_owner(sk, ino);
	return sk;
}

#endif /* __EBPF_SERVER_SOCK_OWNER_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The record bpf/cgroup.bpf.c emits for every cgroup v2 directory made or removed.
 * src/programs/cgroup/ reads it with offsets from this object's BTF, and feeds src/cgroup/'s
 * cache of cgroup paths with it. */
#ifndef __CGROUP_H
#define __CGROUP_H

/* Bytes of the path copied (with its NUL); a longer path is cut, and `truncated` set. */
#define CGROUP_PATH_COPY 512

#define CGROUP_MKDIR 1
#define CGROUP_RMDIR 2

struct cgroup_event {
	__u64 ts_ns;     /* CLOCK_BOOTTIME */
	__u64 id;        /* the cgroup's id: its directory's inode number */
	__u32 pid;       /* the task that made or removed it */
	__s32 level;     /* depth below the root (1: a child of the root) */
	__u16 path_len;  /* bytes of path copied, without the NUL */
	__u8 action;     /* CGROUP_MKDIR or CGROUP_RMDIR */
	__u8 truncated;  /* the path was longer than CGROUP_PATH_COPY - 1 */
	__u32 _pad;
	char comm[16];
	char path[CGROUP_PATH_COPY]; /* relative to the hierarchy's root, e.g. /system.slice/x.service */
};

#endif /* __CGROUP_H */

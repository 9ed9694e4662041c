// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cgroup: every cgroup v2 directory made or removed (cgroup:cgroup_mkdir, cgroup:cgroup_rmdir),
 * with its id and path, so that events of a process in a short-lived cgroup (a container, a
 * transient unit) still name it after the cgroup is gone. Directories of cgroup v1 hierarchies
 * (the hybrid layout) are left out: their ids are of another tree. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "events.h"
#include "cgroup.h"

/* The hierarchy id of cgroup v2 (cgrp_dfl_root): always the first one, 0. */
#define CGROUP_V2_HIERARCHY 0

/* Keeps the struct in the object's BTF for the decoder. */
const struct cgroup_event *unused_cgroup_event __attribute__((unused));

static __always_inline int report(struct trace_event_raw_cgroup *ctx, __u8 action)
{
	struct cgroup_event *e;
	__u32 loc;
	long n;

	if (ctx->root != CGROUP_V2_HIERARCHY)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->id = ctx->id;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->level = ctx->level;
	e->action = action;
	e->_pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* __data_loc: the string's offset from the record in the low 16 bits */
	loc = ctx->__data_loc_path;
	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + (loc & 0xffff));
	if (n < 0)
		n = 0, e->path[0] = 0;
	e->path_len = n > 0 ? n - 1 : 0;
	e->truncated = n == sizeof(e->path) && (loc >> 16) > sizeof(e->path);
	bpf_ringbuf_submit(e, events_submit_flags());
	return 0;
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int cgroup_mkdir(struct trace_event_raw_cgroup *ctx)
{
	return report(ctx, CGROUP_MKDIR);
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int cgroup_rmdir(struct trace_event_raw_cgroup *ctx)
{
	return report(ctx, CGROUP_RMDIR);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

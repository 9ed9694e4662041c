// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The connection program's column writer: struct connection_event records (bpf/connection.h,
 * the struct the BPF side fills) go from the ring straight into the store's typed-array
 * columns in one pass, with no copy in between. What needs JavaScript (interning the command and
 * a unix path, counting by command, protocol and result) is left to src/programs/connection/ as
 * one entry per run of records that share a command and those counts' key: a burst of connects
 * from one process is one entry, however long. bench/README.md has the measurements. */
#include <stddef.h>
#include <string.h>
#include <linux/bpf.h>
#include <linux/types.h>

#include "../bpf/connection.h"
#include "shim.h"

#ifndef AF_UNIX
#define AF_UNIX 1
#endif

/* The table's columns, in this order (src/programs/connection/columns.ts passes the pointers). */
struct ebpf_connection_columns {
	double *ts;
	uint32_t *pid;
	uint32_t *tid;
	uint32_t *uid;
	double *cgroup;
	int32_t *ret;
	double *latency;
	uint8_t *family;
	uint8_t *sock_type;
	uint16_t *protocol;
	uint16_t *port;
	uint8_t *addr; /* 16 bytes per row */
	uint32_t *unix_path; /* 0 here; JavaScript sets the interned path of AF_UNIX rows */
	uint32_t *sock_lo;
	uint32_t *sock_hi;
};

/* One run: rows from `row` (counted from the call's first slot) to the next run's row. */
struct ebpf_connection_run {
	uint32_t row;
	int32_t ret;
	uint32_t family;
	uint32_t sock_type;
	uint32_t protocol;
	uint32_t path_len; /* AF_UNIX (a run of one row): bytes of path */
	char comm[TASK_COMM_LEN];
	char path[UNIX_PATH_LEN];
};

/* The offsets src/programs/connection/columns.ts reads runs at. */
_Static_assert(offsetof(struct ebpf_connection_run, ret) == 4, "run layout");
_Static_assert(offsetof(struct ebpf_connection_run, family) == 8, "run layout");
_Static_assert(offsetof(struct ebpf_connection_run, sock_type) == 12, "run layout");
_Static_assert(offsetof(struct ebpf_connection_run, protocol) == 16, "run layout");
_Static_assert(offsetof(struct ebpf_connection_run, path_len) == 20, "run layout");
_Static_assert(offsetof(struct ebpf_connection_run, comm) == 24, "run layout");
_Static_assert(offsetof(struct ebpf_connection_run, path) == 40, "run layout");
_Static_assert(sizeof(struct ebpf_connection_run) == 148, "run layout");
_Static_assert(sizeof(struct ebpf_connection_columns) == 15 * sizeof(void *), "columns");

#define HDR 8 /* BPF_RINGBUF_HDR_SZ; ebpf_ring_drain's headers have the same size */
#define PREFETCH_AHEAD 1024

uint32_t ebpf_connection_sizes(void)
{
	return (uint32_t)sizeof(struct connection_event) << 16 |
	       (uint32_t)sizeof(struct connection_unix_event);
}

static int same_run(const struct ebpf_connection_run *run, const struct connection_event *e)
{
	return run->ret == e->ret && run->family == e->family && run->sock_type == e->sock_type &&
	       run->protocol == e->protocol && !memcmp(run->comm, e->comm, TASK_COMM_LEN);
}

int32_t ebpf_connection_decode(struct ebpf_ring *ring, const uint8_t *buf, uint32_t len,
			       const struct ebpf_connection_columns *c, uint32_t slot,
			       uint32_t room, double offset_ms, struct ebpf_connection_run *runs,
			       uint32_t runs_cap, uint32_t *out)
{
	const uint8_t *data = buf;
	uint64_t avail = len, off = 0;
	uint32_t rows = 0, nruns = 0, rejected = 0, empty = 0;
	struct ebpf_connection_run *run = NULL;

	if (ring)
		data = ebpf_ring_peek(ring, &avail);
	for (;;) {
		const struct connection_event *e;
		uint32_t hdr, size, s;

		if (avail - off < HDR) {
			/* bytes past the data's end are still there (see ebpf_ring_peek) */
			empty = !ring || ebpf_ring_pending(ring) <= off;
			break;
		}
		hdr = __atomic_load_n((const uint32_t *)(data + off), __ATOMIC_ACQUIRE);
		if (hdr & BPF_RINGBUF_BUSY_BIT) {
			empty = 1; /* still being written: it and everything after wait */
			break;
		}
		size = hdr & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (HDR + ((size + 7) & ~7u) > avail - off)
			break; /* it wraps round the data's end: the next call has it whole */
		if (hdr & BPF_RINGBUF_DISCARD_BIT) {
			off += HDR + ((size + 7) & ~7u);
			continue;
		}
		if (rows == room)
			break;
		e = (const struct connection_event *)(data + off + HDR);
		/* The ring's bytes were written up to a drain interval ago, on another CPU: fetch
		 * the records a few ahead while this one is decoded (the reads are what costs). */
		if (off + PREFETCH_AHEAD < avail)
			__builtin_prefetch(data + off + PREFETCH_AHEAD);
		if (size < sizeof(*e) ||
		    (e->family == AF_UNIX && size < sizeof(struct connection_unix_event))) {
			rejected++;
			off += HDR + ((size + 7) & ~7u);
			continue;
		}
		if (!run || e->family == AF_UNIX || run->path_len || !same_run(run, e)) {
			if (nruns == runs_cap)
				break;
			run = &runs[nruns++];
			run->row = rows;
			run->ret = e->ret;
			run->family = e->family;
			run->sock_type = e->sock_type;
			run->protocol = e->protocol;
			run->path_len = 0;
			memcpy(run->comm, e->comm, TASK_COMM_LEN);
			if (e->family == AF_UNIX) {
				const struct connection_unix_event *u = (const void *)e;

				run->path_len = e->unix_path_len < UNIX_PATH_LEN ? e->unix_path_len
										  : UNIX_PATH_LEN;
				memcpy(run->path, u->unix_path, UNIX_PATH_LEN);
			}
		}
		s = slot + rows++;
		c->ts[s] = (double)e->ts_ns / 1e6 + offset_ms;
		c->pid[s] = e->pid;
		c->tid[s] = e->tid;
		c->uid[s] = e->uid;
		c->cgroup[s] = (double)e->cgroup_id;
		c->ret[s] = e->ret;
		c->latency[s] = (double)e->latency_ns;
		c->family[s] = (uint8_t)e->family;
		c->sock_type[s] = (uint8_t)e->sock_type;
		c->protocol[s] = e->protocol;
		c->port[s] = e->port;
		memcpy(c->addr + (size_t)s * 16, e->addr, 16);
		c->unix_path[s] = 0;
		c->sock_lo[s] = (uint32_t)e->sock_id;
		c->sock_hi[s] = (uint32_t)(e->sock_id >> 32);
		off += HDR + ((size + 7) & ~7u);
	}
	if (ring)
		ebpf_ring_release(ring, off);
	out[0] = nruns;
	out[1] = rejected;
	out[2] = empty;
	out[3] = (uint32_t)off;
	return (int32_t)rows;
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps and helpers every monitoring program shares: the ring buffer its events
 * go to, the per-CPU counter of events that did not fit, and the pid of the
 * server itself (set before load) so the monitor does not report its own work. */
#ifndef __EBPF_SERVER_EVENTS_H
#define __EBPF_SERVER_EVENTS_H

/* Resized from user space before load (--ring-size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Key 0: events dropped because the ring buffer (or a helper map) was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The server's own process id; its events are not reported. */
const volatile __u32 self_tgid = 0;

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

/* Bytes in the ring past which a submit wakes user space (set before load; 0: never). */
const volatile __u32 wake_bytes = 0;

/* User space sleeps until the ring holds wake_bytes (or its own timeout), so an event wakes it
 * only then, never one by one: below the threshold no wake-up is sent. */
static __always_inline __u64 events_submit_flags(void)
{
	if (wake_bytes && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

#endif /* __EBPF_SERVER_EVENTS_H */

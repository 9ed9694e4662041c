// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ref_consumer: the C reference for bench/run.sh. A minimal libbpf consumer of the same BPF
 * object as ebpf-server's `connection` program (build/bpf/connection.bpf.o): same ring size and
 * `self_tgid`, the same drain (BPF_RB_NO_WAKEUP is set on the BPF side, so the ring is drained on
 * a timer; the default copies whole records into a buffer exactly like ffi/shim.c's
 * ebpf_ring_drain, then walks them; --libbpf uses ring_buffer__consume instead). Its only
 * "decoding" is counting events per pid.
 *
 *   ref_consumer [--object PATH] [--ring-size BYTES] [--interval-ms MS] [--libbpf]
 *
 * Prints {"ready":true,...} once attached; on SIGUSR1 a snapshot; on SIGINT/SIGTERM a last drain,
 * the final JSON line (events, events by pid, kernel lost counter, own CPU time), and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "connection.h"

#define DRAIN_BUFFER_BYTES (1u << 20) /* as src/programs/manager.ts */
#define MAX_ROUNDS 64
#define PID_SLOTS 4096

static volatile sig_atomic_t stop_requested, snapshot_requested;
static uint64_t events;
static struct { uint32_t pid; uint64_t n; } by_pid[PID_SLOTS];

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		snapshot_requested = 1;
	else
		stop_requested = 1;
}

static inline void count_event(const void *rec, uint32_t size)
{
	uint32_t pid, h;

	events++;
	if (size < sizeof(struct connection_event))
		return;
	memcpy(&pid, (const char *)rec + offsetof(struct connection_event, pid), sizeof(pid));
	for (h = (pid * 2654435761u) & (PID_SLOTS - 1);; h = (h + 1) & (PID_SLOTS - 1)) {
		if (by_pid[h].pid == pid || by_pid[h].n == 0) {
			by_pid[h].pid = pid;
			by_pid[h].n++;
			return;
		}
	}
}

/* The ring mapped as ffi/shim.c maps it. */
struct ring {
	uint64_t *consumer;
	uint64_t *producer;
	uint8_t *data;
	uint64_t mask;
};

static int ring_map(struct ring *r, int fd, uint32_t size)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	r->mask = size - 1;
	r->consumer = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->consumer == MAP_FAILED)
		return -errno;
	p = mmap(NULL, page + 2 * (size_t)size, PROT_READ, MAP_SHARED, fd, page);
	if (p == MAP_FAILED)
		return -errno;
	r->producer = p;
	r->data = (uint8_t *)p + page;
	return 0;
}

/* The loop of ebpf_ring_drain (ffi/shim.c), unchanged. */
static uint32_t ring_drain(struct ring *r, uint8_t *buf, uint32_t cap)
{
	uint64_t cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
	uint32_t used = 0;

	while (cons < prod) {
		uint32_t *hdr = (uint32_t *)(r->data + (cons & r->mask));
		uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		uint32_t size, padded;

		if (len & BPF_RINGBUF_BUSY_BIT)
			break;
		size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		padded = (size + 7) & ~7u;
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			if (cap - used < padded + 8)
				break;
			((uint32_t *)(buf + used))[0] = size;
			((uint32_t *)(buf + used))[1] = 0;
			memcpy(buf + used + 8, hdr + 2, size);
			used += padded + 8;
		}
		cons += padded + BPF_RINGBUF_HDR_SZ;
	}
	__atomic_store_n(r->consumer, cons, __ATOMIC_RELEASE);
	return used;
}

/* As ProgramManager.#drainSlot: rounds of drain + walk until the buffer comes back under half full. */
static void drain_copy(struct ring *r, uint8_t *buf)
{
	for (int round = 0; round < MAX_ROUNDS; round++) {
		uint32_t used = ring_drain(r, buf, DRAIN_BUFFER_BYTES), off = 0;

		if (!used)
			break;
		while (off < used) {
			uint32_t size = *(uint32_t *)(buf + off);

			count_event(buf + off + 8, size);
			off += 8 + ((size + 7) & ~7u);
		}
		if (used < DRAIN_BUFFER_BYTES / 2)
			break;
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	count_event(data, (uint32_t)size);
	return 0;
}

static double lost_sum(struct bpf_object *obj)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, "lost");
	int ncpu = libbpf_num_possible_cpus();
	uint64_t values[1024];
	uint32_t key = 0;
	double sum = 0;

	if (!m || ncpu <= 0 || ncpu > 1024 || bpf_map_lookup_elem(bpf_map__fd(m), &key, values))
		return -1;
	for (int i = 0; i < ncpu; i++)
		sum += (double)values[i];
	return sum;
}

static void report(const char *kind, struct bpf_object *obj)
{
	struct rusage ru;
	int first = 1;

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"%s\":true,\"pid\":%d,\"events\":%llu,\"lost\":%.0f,\"cpu_user_s\":%.6f,"
	       "\"cpu_sys_s\":%.6f,\"by_pid\":{",
	       kind, getpid(), (unsigned long long)events, lost_sum(obj),
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	for (int i = 0; i < PID_SLOTS; i++) {
		if (!by_pid[i].n)
			continue;
		printf("%s\"%u\":%llu", first ? "" : ",", by_pid[i].pid, (unsigned long long)by_pid[i].n);
		first = 0;
	}
	printf("}}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *path = "build/bpf/connection.bpf.o";
	uint32_t ring_size = 16u << 20, self = (uint32_t)getpid();
	long interval_ms = 10;
	int use_libbpf = 0, err;
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *events_map;
	struct bpf_link *links[16];
	int nr_links = 0;
	struct ring ring;
	struct ring_buffer *rb = NULL;
	uint8_t *buf = NULL;
	struct timespec next;
	struct sigaction sa = { .sa_handler = on_signal };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--object") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--ring-size") && i + 1 < argc)
			ring_size = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_ms = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--libbpf"))
			use_libbpf = 1;
		else {
			fprintf(stderr, "usage: ref_consumer [--object PATH] [--ring-size BYTES] "
					"[--interval-ms MS] [--libbpf]\n");
			return 2;
		}
	}

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "ref_consumer: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	events_map = bpf_object__find_map_by_name(obj, "events");
	if (!events_map || bpf_map__set_max_entries(events_map, ring_size)) {
		fprintf(stderr, "ref_consumer: cannot size the events ring\n");
		return 1;
	}
	/* self_tgid lives in .rodata; the skeleton-less way is to patch the initial value. */
	{
		struct bpf_map *m;
		const struct btf *btf = bpf_object__btf(obj);
		int found = 0;

		bpf_object__for_each_map(m, obj) {
			size_t len, l = strlen(bpf_map__name(m));
			const struct btf_type *sec;
			const struct btf_var_secinfo *vs;
			char *init;
			int id;

			if (l < 7 || strcmp(bpf_map__name(m) + l - 7, ".rodata"))
				continue;
			id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
			if (id < 0)
				break;
			init = (char *)bpf_map__initial_value(m, &len);
			sec = btf__type_by_id(btf, id);
			vs = btf_var_secinfos(sec);
			for (int i = 0; i < btf_vlen(sec); i++, vs++) {
				const struct btf_type *var = btf__type_by_id(btf, vs->type);

				if (!strcmp(btf__name_by_offset(btf, var->name_off), "self_tgid") &&
				    vs->size == sizeof(self) && vs->offset + sizeof(self) <= len) {
					memcpy(init + vs->offset, &self, sizeof(self));
					found = 1;
				}
			}
		}
		if (!found) {
			fprintf(stderr, "ref_consumer: no self_tgid constant in %s\n", path);
			return 1;
		}
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "ref_consumer: load: %s\n", strerror(-err));
		return 1;
	}
	if (use_libbpf) {
		rb = ring_buffer__new(bpf_map__fd(events_map), on_record, NULL, NULL);
		if (!rb) {
			fprintf(stderr, "ref_consumer: ring_buffer__new: %s\n", strerror(errno));
			return 1;
		}
	} else {
		buf = malloc(DRAIN_BUFFER_BYTES);
		err = ring_map(&ring, bpf_map__fd(events_map), ring_size);
		if (!buf || err) {
			fprintf(stderr, "ref_consumer: map ring: %s\n", strerror(err ? -err : ENOMEM));
			return 1;
		}
	}
	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link = bpf_program__attach(prog);

		if (!link || nr_links == 16) {
			fprintf(stderr, "ref_consumer: attach %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			for (int i = 0; i < nr_links; i++)
				bpf_link__destroy(links[i]);
			bpf_object__close(obj);
			return 1;
		}
		links[nr_links++] = link;
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	printf("{\"ready\":true,\"pid\":%d,\"mode\":\"%s\",\"ring_size\":%u,\"interval_ms\":%ld}\n",
	       getpid(), use_libbpf ? "libbpf" : "copy", ring_size, interval_ms);
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_requested) {
		next.tv_nsec += interval_ms * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR &&
		       !stop_requested && !snapshot_requested)
			;
		if (use_libbpf)
			ring_buffer__consume(rb);
		else
			drain_copy(&ring, buf);
		if (snapshot_requested) {
			snapshot_requested = 0;
			report("snapshot", obj);
		}
	}
	for (int i = nr_links - 1; i >= 0; i--)
		bpf_link__destroy(links[i]);
	if (use_libbpf)
		ring_buffer__consume(rb);
	else
		drain_copy(&ring, buf);
	report("final", obj);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	free(buf);
	return 0;
}

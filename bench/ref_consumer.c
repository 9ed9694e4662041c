// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ref_consumer: the C reference for bench/run.sh. A minimal libbpf consumer of the same BPF
 * objects as ebpf-server's programs (build/bpf/<name>.bpf.o): same ring size and `self_tgid`,
 * the settings the server's `configure` gives each object (below), the same drain
 * (BPF_RB_NO_WAKEUP is set on the BPF side, so the rings are drained on a timer; the default
 * copies whole records into a buffer exactly like ffi/shim.c's ebpf_ring_drain, then walks them;
 * --libbpf uses ring_buffer__consume instead). Its only "decoding" is counting: events per
 * object, connection events per pid, packet_drop events per pid and per UDP source port.
 *
 *   ref_consumer [--object PATH | --objects NAME,... | --all] [--bpf-dir DIR]
 *                [--ring-size BYTES] [--interval-ms MS] [--libbpf]
 *
 * --object PATH: one object (default build/bpf/connection.bpf.o). --objects: objects by program
 * name from DIR (default build/bpf), opened, loaded and attached in the order given; --all: the
 * server's default set in its start order (cgroup, connection, packet_drop, tcp_life, dns). All
 * rings are drained one after another on each tick, as the server drains every program's.
 *
 * What it sets before load, as src/programs/manager.ts and each src/programs/<name>/mod.ts do:
 * - every object: the `events` ring's size, self_tgid = its own pid. It leaves wake_bytes at 0
 *   (no wake-up: it drains on a timer; the server sets half the ring and pays one
 *   bpf_ringbuf_query per event for it).
 * - sock_owner: one map shared by every object that declares it (the first one's, reused).
 * - tcp_life: self_netns = its own network namespace's inode; self_port = 0 (it serves no port;
 *   the server gives its HTTP port, so its own connections are left out there).
 * - packet_drop: reason_not_dropped / reason_consumed = SKB_NOT_DROPPED_YET / SKB_CONSUMED from
 *   enum skb_drop_reason in /sys/kernel/btf/vmlinux (values no reason has if absent, as there).
 * - dns: nothing (dns_ports = {53}, dns_nports = 1 in the object = the server's --dns-ports).
 * Programs on a tracepoint this kernel lacks are not loaded (the server leaves out such optional
 * hooks and fails on required ones); iterators are loaded, not attached; cgroup programs are
 * attached to the cgroup v2 root (the cgroup2 mount of /proc/self/mountinfo whose root is /).
 *
 * Prints {"ready":true,...} once attached; on SIGUSR1 a snapshot; on SIGINT/SIGTERM a last drain,
 * the final JSON line (events, per-object events and lost counters, events by pid, drops by pid
 * and by UDP source port, own CPU time), and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "connection.h"
#include "packet_drop.h"

#define DRAIN_BUFFER_BYTES (1u << 20) /* as src/programs/manager.ts */
#define MAX_ROUNDS 64
#define PID_SLOTS 4096
#define MAX_OBJECTS 8
#define MAX_LINKS 16

/* The server's default programs, in its start (and drain) order: src/programs/mod.ts. */
static const char *const ALL_PROGRAMS[] = { "cgroup", "connection", "packet_drop", "tcp_life",
					    "dns" };

static volatile sig_atomic_t stop_requested, snapshot_requested;
static uint64_t events;

/* Counts by pid in an open-addressing table; pids past its size are counted in `overflow`. */
struct pid_counts {
	struct { uint32_t pid; uint64_t n; } slot[PID_SLOTS];
	uint32_t used;
	uint64_t overflow;
};

static struct pid_counts by_pid;   /* connection events */
static struct pid_counts drop_pid; /* packet_drop events: the owner's pid if known, else the context's */
static uint64_t drop_udp_sport[65536]; /* packet_drop events of IPv4/IPv6 UDP packets, by source port */

enum kind { KIND_OTHER, KIND_CONNECTION, KIND_PACKET_DROP };

/* The ring mapped as ffi/shim.c maps it. */
struct ring {
	uint64_t *consumer;
	uint64_t *producer;
	uint8_t *data;
	uint64_t mask;
};

struct consumer {
	char name[64];
	enum kind kind;
	struct bpf_object *obj;
	struct bpf_map *events_map;
	struct ring ring;
	struct bpf_link *links[MAX_LINKS];
	int nr_links;
	uint64_t events;
};

static struct consumer consumers[MAX_OBJECTS];
static int nr_consumers;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		snapshot_requested = 1;
	else
		stop_requested = 1;
}

static void count_pid(struct pid_counts *t, uint32_t pid)
{
	for (uint32_t h = (pid * 2654435761u) & (PID_SLOTS - 1);; h = (h + 1) & (PID_SLOTS - 1)) {
		if (t->slot[h].n && t->slot[h].pid == pid) {
			t->slot[h].n++;
			return;
		}
		if (!t->slot[h].n) {
			if (t->used == PID_SLOTS / 2) {
				t->overflow++;
				return;
			}
			t->used++;
			t->slot[h].pid = pid;
			t->slot[h].n = 1;
			return;
		}
	}
}

static inline void count_event(struct consumer *c, const void *rec, uint32_t size)
{
	uint32_t pid;

	events++;
	c->events++;
	if (c->kind == KIND_CONNECTION) {
		if (size < sizeof(struct connection_event))
			return;
		memcpy(&pid, (const char *)rec + offsetof(struct connection_event, pid), sizeof(pid));
		count_pid(&by_pid, pid);
	} else if (c->kind == KIND_PACKET_DROP) {
		const struct packet_drop_event *e = rec;

		if (size < sizeof(*e))
			return;
		count_pid(&drop_pid, e->has_owner ? e->owner_pid : e->pid);
		if (e->ip_version && e->l4_protocol == 17)
			drop_udp_sport[e->sport]++;
	}
}

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
static void drain_copy(struct consumer *c, uint8_t *buf)
{
	for (int round = 0; round < MAX_ROUNDS; round++) {
		uint32_t used = ring_drain(&c->ring, buf, DRAIN_BUFFER_BYTES), off = 0;

		if (!used)
			break;
		while (off < used) {
			uint32_t size = *(uint32_t *)(buf + off);

			count_event(c, buf + off + 8, size);
			off += 8 + ((size + 7) & ~7u);
		}
		if (used < DRAIN_BUFFER_BYTES / 2)
			break;
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	count_event(ctx, data, (uint32_t)size);
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

static void print_pids(const char *key, const struct pid_counts *t)
{
	int first = 1;

	printf(",\"%s\":{", key);
	for (int i = 0; i < PID_SLOTS; i++) {
		if (!t->slot[i].n)
			continue;
		printf("%s\"%u\":%llu", first ? "" : ",", t->slot[i].pid,
		       (unsigned long long)t->slot[i].n);
		first = 0;
	}
	printf("}");
}

static void report(const char *kind)
{
	struct rusage ru;
	double lost = 0;
	int first = 1;

	for (int i = 0; i < nr_consumers; i++) {
		double l = lost_sum(consumers[i].obj);

		lost = lost < 0 || l < 0 ? -1 : lost + l;
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"%s\":true,\"pid\":%d,\"events\":%llu,\"lost\":%.0f,\"cpu_user_s\":%.6f,"
	       "\"cpu_sys_s\":%.6f,\"programs\":{",
	       kind, getpid(), (unsigned long long)events, lost,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	for (int i = 0; i < nr_consumers; i++) {
		printf("%s\"%s\":{\"events\":%llu,\"lost\":%.0f}", i ? "," : "", consumers[i].name,
		       (unsigned long long)consumers[i].events, lost_sum(consumers[i].obj));
	}
	printf("}");
	if (!strcmp(kind, "final")) {
		print_pids("by_pid", &by_pid);
		print_pids("drops_by_pid", &drop_pid);
		printf(",\"drops_by_udp_sport\":{");
		for (int p = 0; p < 65536; p++) {
			if (!drop_udp_sport[p])
				continue;
			printf("%s\"%d\":%llu", first ? "" : ",", p,
			       (unsigned long long)drop_udp_sport[p]);
			first = 0;
		}
		printf("},\"pids_not_counted\":%llu",
		       (unsigned long long)(by_pid.overflow + drop_pid.overflow));
	}
	printf("}\n");
	fflush(stdout);
}

/* Sets a `const volatile` variable in .rodata before load (as ebpf_obj_set_const in ffi/shim.c);
 * -ENOENT when the object has no such variable. */
static int set_const(struct bpf_object *obj, const char *name, const void *value, uint32_t size)
{
	const struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *m, *rodata = NULL;
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	size_t len;
	char *init;
	int id;

	bpf_object__for_each_map(m, obj) {
		size_t l = strlen(bpf_map__name(m));

		if (l >= 7 && !strcmp(bpf_map__name(m) + l - 7, ".rodata"))
			rodata = m;
	}
	id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -ENOENT;
	if (!rodata || id < 0)
		return -ENOENT;
	init = (char *)bpf_map__initial_value(rodata, &len);
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != size || vs->offset + size > len)
			return -EINVAL;
		memcpy(init + vs->offset, value, size);
		return 0;
	}
	return -ENOENT;
}

/* The value of a drop reason in the running kernel's enum skb_drop_reason (`raw` is the name
 * without its prefix: NOT_DROPPED_YET), or `absent`. src/programs/packet_drop/reasons.ts takes
 * off SKB_DROP_REASON_, else SKB_; both spellings are tried here. */
static uint32_t drop_reason(const struct btf *vmlinux, const char *raw, uint32_t absent)
{
	char a[96], b[96];
	const struct btf_type *t;
	int id;

	if (!vmlinux)
		return absent;
	id = btf__find_by_name_kind(vmlinux, "skb_drop_reason", BTF_KIND_ENUM);
	if (id < 0)
		id = btf__find_by_name_kind(vmlinux, "skb_drop_reason", BTF_KIND_ENUM64);
	if (id < 0)
		return absent;
	snprintf(a, sizeof(a), "SKB_DROP_REASON_%s", raw);
	snprintf(b, sizeof(b), "SKB_%s", raw);
	t = btf__type_by_id(vmlinux, id);
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *n;
		uint64_t v;

		if (btf_is_enum(t)) {
			n = btf__name_by_offset(vmlinux, btf_enum(t)[i].name_off);
			v = (uint32_t)btf_enum(t)[i].val;
		} else {
			n = btf__name_by_offset(vmlinux, btf_enum64(t)[i].name_off);
			v = btf_enum64_value(&btf_enum64(t)[i]);
		}
		if (!strcmp(n, a) || !strcmp(n, b))
			return (uint32_t)v;
	}
	return absent;
}

/* The mount point of the cgroup v2 hierarchy whose root is / (else the first one), or NULL:
 * as cgroup2Root in src/kernel/cgroup.ts. */
static const char *cgroup2_root(void)
{
	static char found[512];
	char line[4096], first[512] = "";
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return NULL;
	found[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		char root[512], point[512];
		char *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %511s %511s", root, point) != 2)
			continue;
		if (!first[0])
			snprintf(first, sizeof(first), "%s", point);
		if (!strcmp(root, "/")) {
			snprintf(found, sizeof(found), "%s", point);
			break;
		}
	}
	fclose(f);
	if (!found[0] && first[0])
		snprintf(found, sizeof(found), "%s", first);
	return found[0] ? found : NULL;
}

/* Whether the tracepoint of a `tracepoint/CAT/NAME` section exists (else true: not ours to say). */
static int tracepoint_exists(const char *section)
{
	char path[512];

	if (strncmp(section, "tracepoint/", 11) && strncmp(section, "tp/", 3))
		return 1;
	section = strchr(section, '/') + 1;
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s", section);
	if (!access(path, F_OK))
		return 1;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s", section);
	return !access(path, F_OK);
}

static void detach_all(void)
{
	for (int i = nr_consumers - 1; i >= 0; i--) {
		while (consumers[i].nr_links > 0)
			bpf_link__destroy(consumers[i].links[--consumers[i].nr_links]);
	}
}

static void close_all(void)
{
	detach_all();
	for (int i = nr_consumers - 1; i >= 0; i--)
		bpf_object__close(consumers[i].obj);
}

static int fail(const char *what, const char *name, int err)
{
	fprintf(stderr, "ref_consumer: %s %s: %s\n", what, name, strerror(err < 0 ? -err : err));
	close_all();
	return 1;
}

int main(int argc, char **argv)
{
	const char *single = NULL, *list = NULL, *dir = "build/bpf";
	const char *names[MAX_OBJECTS];
	char paths[MAX_OBJECTS][512], list_copy[512], left_out[1024] = "";
	uint32_t ring_size = 16u << 20, self = (uint32_t)getpid(), netns = 0;
	uint32_t not_dropped, consumed;
	long interval_ms = 10;
	int use_libbpf = 0, all = 0, nr_names = 0, shared_owner_fd = -1, cgroup_fd = -1, err;
	struct ring_buffer *rb = NULL;
	struct btf *vmlinux;
	struct stat st;
	uint8_t *buf = NULL;
	struct timespec next;
	struct sigaction sa = { .sa_handler = on_signal };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--object") && i + 1 < argc)
			single = argv[++i];
		else if (!strcmp(argv[i], "--objects") && i + 1 < argc)
			list = argv[++i];
		else if (!strcmp(argv[i], "--all"))
			all = 1;
		else if (!strcmp(argv[i], "--bpf-dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--ring-size") && i + 1 < argc)
			ring_size = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_ms = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--libbpf"))
			use_libbpf = 1;
		else {
			fprintf(stderr, "usage: ref_consumer [--object PATH | --objects NAME,... | --all] "
					"[--bpf-dir DIR] [--ring-size BYTES] [--interval-ms MS] "
					"[--libbpf]\n");
			return 2;
		}
	}
	if (!!single + !!list + all > 1) {
		fprintf(stderr, "ref_consumer: give one of --object, --objects, --all\n");
		return 2;
	}
	if (all) {
		for (size_t i = 0; i < sizeof(ALL_PROGRAMS) / sizeof(*ALL_PROGRAMS); i++)
			names[nr_names++] = ALL_PROGRAMS[i];
	} else if (list) {
		snprintf(list_copy, sizeof(list_copy), "%s", list);
		for (char *save, *n = strtok_r(list_copy, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
			if (nr_names == MAX_OBJECTS) {
				fprintf(stderr, "ref_consumer: at most %d objects\n", MAX_OBJECTS);
				return 2;
			}
			names[nr_names++] = n;
		}
	}
	if (nr_names) {
		for (int i = 0; i < nr_names; i++)
			snprintf(paths[i], sizeof(paths[i]), "%s/%s.bpf.o", dir, names[i]);
	} else {
		snprintf(paths[0], sizeof(paths[0]), "%s", single ? single : "build/bpf/connection.bpf.o");
		nr_names = 1;
	}

	if (!stat("/proc/self/ns/net", &st))
		netns = (uint32_t)st.st_ino;
	vmlinux = btf__load_vmlinux_btf();
	if (libbpf_get_error(vmlinux))
		vmlinux = NULL;
	/* values no reason has when the kernel lacks the names, as packet_drop's configure */
	not_dropped = drop_reason(vmlinux, "NOT_DROPPED_YET", 0xfffffffe);
	consumed = drop_reason(vmlinux, "CONSUMED", 0xfffffffd);
	btf__free(vmlinux);

	for (int k = 0; k < nr_names; k++) {
		struct consumer *c = &consumers[nr_consumers];
		const char *base = strrchr(paths[k], '/') ? strrchr(paths[k], '/') + 1 : paths[k];
		struct bpf_program *prog;
		struct bpf_map *owner;
		char *dot;

		snprintf(c->name, sizeof(c->name), "%.63s", base);
		dot = strstr(c->name, ".bpf.o");
		if (dot)
			*dot = 0;
		c->kind = !strcmp(c->name, "connection")  ? KIND_CONNECTION :
			  !strcmp(c->name, "packet_drop") ? KIND_PACKET_DROP :
							    KIND_OTHER;
		c->obj = bpf_object__open_file(paths[k], NULL);
		if (!c->obj)
			return fail("open", paths[k], errno);
		nr_consumers++;
		c->events_map = bpf_object__find_map_by_name(c->obj, "events");
		if (!c->events_map || bpf_map__set_max_entries(c->events_map, ring_size))
			return fail("size the events ring of", c->name, ENOENT);
		/* self_tgid lives in .rodata; the skeleton-less way is to patch the initial value. */
		if (set_const(c->obj, "self_tgid", &self, sizeof(self)))
			return fail("no self_tgid constant in", paths[k], ENOENT);
		if (!strcmp(c->name, "tcp_life")) {
			uint32_t port = 0;

			if (set_const(c->obj, "self_port", &port, sizeof(port)) ||
			    set_const(c->obj, "self_netns", &netns, sizeof(netns)))
				return fail("no self_port/self_netns constants in", paths[k], ENOENT);
		}
		if (!strcmp(c->name, "packet_drop") &&
		    (set_const(c->obj, "reason_not_dropped", &not_dropped, sizeof(not_dropped)) ||
		     set_const(c->obj, "reason_consumed", &consumed, sizeof(consumed))))
			return fail("no reason constants in", paths[k], ENOENT);
		owner = bpf_object__find_map_by_name(c->obj, "sock_owner");
		if (owner && shared_owner_fd >= 0 && (err = bpf_map__reuse_fd(owner, shared_owner_fd)))
			return fail("reuse sock_owner in", c->name, err);
		bpf_object__for_each_program(prog, c->obj) {
			if (!tracepoint_exists(bpf_program__section_name(prog))) {
				bpf_program__set_autoload(prog, false);
				snprintf(left_out + strlen(left_out), sizeof(left_out) - strlen(left_out),
					 "%s\"%s/%s\"", left_out[0] ? "," : "", c->name,
					 bpf_program__name(prog));
			}
		}
		err = bpf_object__load(c->obj);
		if (err)
			return fail("load", c->name, err);
		if (owner && shared_owner_fd < 0)
			shared_owner_fd = bpf_map__fd(owner); /* lives as long as this object */
		bpf_object__for_each_program(prog, c->obj) {
			const char *sec = bpf_program__section_name(prog);
			struct bpf_link *link;

			if (!bpf_program__autoload(prog) || !strncmp(sec, "iter/", 5))
				continue; /* left out; an iterator runs on demand */
			if (c->nr_links == MAX_LINKS)
				return fail("attach: too many programs in", c->name, E2BIG);
			if (!strncmp(sec, "cgroup/", 7) || !strncmp(sec, "cgroup_skb/", 11)) {
				if (cgroup_fd < 0) {
					const char *root = cgroup2_root();

					cgroup_fd = root ? open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
					if (cgroup_fd < 0)
						return fail("open the cgroup v2 root for", c->name,
							    root ? errno : ENOENT);
				}
				link = bpf_program__attach_cgroup(prog, cgroup_fd);
			} else {
				link = bpf_program__attach(prog);
			}
			if (!link)
				return fail("attach", bpf_program__name(prog), errno);
			c->links[c->nr_links++] = link;
		}
		if (use_libbpf) {
			int fd = bpf_map__fd(c->events_map);

			err = rb ? ring_buffer__add(rb, fd, on_record, c) : 0;
			if (!rb && !(rb = ring_buffer__new(fd, on_record, c, NULL)))
				err = -errno;
			if (err)
				return fail("ring_buffer__new/add for", c->name, err);
		} else {
			err = ring_map(&c->ring, bpf_map__fd(c->events_map), ring_size);
			if (err)
				return fail("map the ring of", c->name, err);
		}
	}
	if (cgroup_fd >= 0)
		close(cgroup_fd); /* the links hold the cgroup */
	if (!use_libbpf && !(buf = malloc(DRAIN_BUFFER_BYTES)))
		return fail("allocate", "the drain buffer", ENOMEM);

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	printf("{\"ready\":true,\"pid\":%d,\"mode\":\"%s\",\"ring_size\":%u,\"interval_ms\":%ld,"
	       "\"reason_not_dropped\":%u,\"reason_consumed\":%u,\"objects\":[",
	       getpid(), use_libbpf ? "libbpf" : "copy", ring_size, interval_ms, not_dropped, consumed);
	for (int i = 0; i < nr_consumers; i++)
		printf("%s\"%s\"", i ? "," : "", consumers[i].name);
	printf("],\"left_out\":[%s]}\n", left_out);
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
		if (use_libbpf) {
			ring_buffer__consume(rb);
		} else {
			for (int i = 0; i < nr_consumers; i++)
				drain_copy(&consumers[i], buf);
		}
		if (snapshot_requested) {
			snapshot_requested = 0;
			report("snapshot");
		}
	}
	detach_all();
	if (use_libbpf) {
		ring_buffer__consume(rb);
	} else {
		for (int i = 0; i < nr_consumers; i++)
			drain_copy(&consumers[i], buf);
	}
	report("final");
	ring_buffer__free(rb);
	close_all();
	free(buf);
	return 0;
}

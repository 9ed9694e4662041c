// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* See shim.h. Every call runs on the caller's thread and returns quickly, and Deno calls
 * them synchronously; ebpf_waiter_wait alone blocks, on a thread of Deno's (nonblocking). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "shim.h"

#define ERROR_CAP (256 * 1024)
#define MAX_LINKS 64

struct ebpf_obj {
	struct bpf_object *obj;
	void *data; /* the ELF bytes; libbpf reads them until load */
	struct bpf_link *links[MAX_LINKS];
	int nr_links;
};

struct ebpf_ring {
	void *consumer; /* one page, read-write: consumer position */
	void *producer; /* one page of producer position, then the data once */
	uint8_t *data;
	uint64_t mask;
	uint8_t *bounce; /* a record that wraps round the data's end, made contiguous */
	uint32_t bounce_cap;
	size_t producer_len;
	long page;
	int fd; /* the ring buffer map: what a waiter watches */
	uint32_t wake_bytes; /* a waiter's wake-up from it counts when it holds this much */
};

#define MAX_WATCHED 64

struct ebpf_waiter {
	int epfd;
	int kickfd; /* an eventfd: a write ends a wait at once */
	/* The rings watched now. The waiting thread reads a woken ring's positions only while it
	 * holds the lock and finds the ring here, so a ring unwatched (then closed) on Deno's
	 * thread is never touched after ebpf_waiter_unwatch returns. */
	pthread_mutex_t lock;
	struct ebpf_ring *rings[MAX_WATCHED];
	int nr_rings;
};

/* The log of the current call: libbpf's messages, then our own. */
static __thread char error_buf[ERROR_CAP];
static __thread size_t error_len;
static int print_installed;

static void error_vappend(const char *fmt, va_list ap)
{
	int n;

	if (error_len >= ERROR_CAP - 1)
		return;
	n = vsnprintf(error_buf + error_len, ERROR_CAP - error_len, fmt, ap);
	if (n > 0)
		error_len += (size_t)n < ERROR_CAP - error_len ? (size_t)n : ERROR_CAP - 1 - error_len;
}

static void error_append(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vappend(fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_DEBUG)
		error_vappend(fmt, ap);
	return 0;
}

/* Starts a call: clears the log and routes libbpf's messages into it. */
static void call_begin(void)
{
	if (!print_installed) {
		libbpf_set_print(libbpf_print);
		print_installed = 1;
	}
	error_len = 0;
	error_buf[0] = '\0';
}

static int fail(int err, const char *what, const char *name)
{
	if (err > 0)
		err = -err;
	error_append("%s%s%s: %s\n", what, name ? " " : "", name ? name : "", strerror(-err));
	return err;
}

uint32_t ebpf_error_copy(char *buf, uint32_t cap)
{
	if (cap) {
		size_t n = error_len < cap - 1 ? error_len : cap - 1;

		memcpy(buf, error_buf, n);
		buf[n] = '\0';
	}
	return (uint32_t)error_len;
}

/*
 * libbpf 1.1 fails a CO-RE relocation whose type is not in vmlinux's BTF (an ___old flavor on a
 * new kernel) when it may not list the kernel modules' BTF, which needs CAP_SYS_ADMIN; newer
 * libbpf skips module BTF then. Do the same: without that privilege, relocate against vmlinux's
 * BTF alone (given as the target, so module BTF is never listed). Root is unaffected.
 */
static const char *core_target_btf(void)
{
	__u32 id = 0;

	if (!bpf_btf_get_next_id(0, &id) || errno != EPERM)
		return NULL;
	return access("/sys/kernel/btf/vmlinux", R_OK) ? NULL : "/sys/kernel/btf/vmlinux";
}

struct ebpf_obj *ebpf_obj_open(const void *data, uint32_t size, const char *name)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name,
		    .btf_custom_path = core_target_btf());
	struct ebpf_obj *o;
	int err;

	call_begin();
	o = calloc(1, sizeof(*o));
	if (!o || !(o->data = malloc(size))) {
		free(o);
		fail(-ENOMEM, "open", name);
		return NULL;
	}
	memcpy(o->data, data, size);
	o->obj = bpf_object__open_mem(o->data, size, &opts);
	err = libbpf_get_error(o->obj);
	if (err) {
		free(o->data);
		free(o);
		fail(err, "open", name);
		return NULL;
	}
	return o;
}

int32_t ebpf_obj_set_map_size(struct ebpf_obj *o, const char *map, uint32_t max_entries)
{
	struct bpf_map *m;
	int err;

	call_begin();
	m = bpf_object__find_map_by_name(o->obj, map);
	if (!m)
		return fail(-ENOENT, "no map", map);
	err = bpf_map__set_max_entries(m, max_entries);
	return err ? fail(err, "resize map", map) : 0;
}

int32_t ebpf_obj_set_const(struct ebpf_obj *o, const char *name, const void *value, uint32_t size)
{
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	struct bpf_map *rodata = NULL, *m;
	struct btf *btf;
	size_t len;
	char *init;
	int id, i;

	call_begin();
	btf = bpf_object__btf(o->obj);
	bpf_object__for_each_map(m, o->obj) {
		const char *n = bpf_map__name(m);
		size_t l = strlen(n);

		if (l >= 7 && !strcmp(n + l - 7, ".rodata"))
			rodata = m;
	}
	id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -ENOENT;
	if (!rodata || id < 0)
		return fail(-ENOENT, "no .rodata section for", name);
	init = (char *)bpf_map__initial_value(rodata, &len);
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != size || vs->offset + size > len)
			return fail(-EINVAL, "size mismatch for constant", name);
		memcpy(init + vs->offset, value, size);
		return 0;
	}
	return fail(-ENOENT, "no constant", name);
}

int32_t ebpf_obj_load(struct ebpf_obj *o)
{
	int err;

	call_begin();
	err = bpf_object__load(o->obj);
	return err ? fail(err, "load", bpf_object__name(o->obj)) : 0;
}

void ebpf_obj_detach(struct ebpf_obj *o)
{
	while (o->nr_links > 0)
		bpf_link__destroy(o->links[--o->nr_links]);
}

int32_t ebpf_obj_programs(struct ebpf_obj *o, char *buf, uint32_t cap)
{
	struct bpf_program *p;
	size_t used = 0;

	call_begin();
	bpf_object__for_each_program(p, o->obj) {
		int n = snprintf(used < cap ? buf + used : NULL, used < cap ? cap - used : 0,
				 "%s\t%s\n", bpf_program__name(p), bpf_program__section_name(p));

		if (n > 0)
			used += n;
	}
	return (int32_t)used;
}

int32_t ebpf_obj_set_autoload(struct ebpf_obj *o, const char *prog, int32_t on)
{
	struct bpf_program *p;
	int err;

	call_begin();
	p = bpf_object__find_program_by_name(o->obj, prog);
	if (!p)
		return fail(-ENOENT, "no program", prog);
	err = bpf_program__set_autoload(p, on != 0);
	return err ? fail(err, "set autoload of", prog) : 0;
}

int32_t ebpf_obj_attach_prog(struct ebpf_obj *o, const char *prog)
{
	struct bpf_program *p;
	struct bpf_link *link;
	int err;

	call_begin();
	p = bpf_object__find_program_by_name(o->obj, prog);
	if (!p)
		return fail(-ENOENT, "no program", prog);
	if (o->nr_links == MAX_LINKS)
		return fail(-E2BIG, "attach: too many programs in", bpf_object__name(o->obj));
	link = bpf_program__attach(p);
	err = libbpf_get_error(link);
	if (err)
		return fail(err, "attach", prog);
	o->links[o->nr_links++] = link;
	return 0;
}

/* What statfs() says of a cgroup v2 mount (linux/magic.h). */
#define CGROUP2_SUPER_MAGIC 0x63677270

int32_t ebpf_obj_attach_cgroup(struct ebpf_obj *o, const char *prog, const char *cgroup)
{
	struct bpf_program *p;
	struct bpf_link *link;
	struct statfs st;
	int fd, err;

	call_begin();
	p = bpf_object__find_program_by_name(o->obj, prog);
	if (!p)
		return fail(-ENOENT, "no program", prog);
	if (o->nr_links == MAX_LINKS)
		return fail(-E2BIG, "attach: too many programs in", bpf_object__name(o->obj));
	fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(-errno, "open cgroup", cgroup);
	if (fstatfs(fd, &st) || st.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		return fail(-ENOTDIR, "not a cgroup v2 directory:", cgroup);
	}
	link = bpf_program__attach_cgroup(p, fd);
	err = libbpf_get_error(link);
	close(fd); /* the link holds the cgroup */
	if (err)
		return fail(err, "attach to the cgroup", prog);
	o->links[o->nr_links++] = link;
	return 0;
}

void ebpf_obj_close(struct ebpf_obj *o)
{
	if (!o)
		return;
	ebpf_obj_detach(o);
	bpf_object__close(o->obj);
	free(o->data);
	free(o);
}

static const struct btf_type *find_struct(struct ebpf_obj *o, const char *type, int *id)
{
	struct btf *btf = bpf_object__btf(o->obj);

	*id = btf ? btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT) : -ENOENT;
	return *id < 0 ? NULL : btf__type_by_id(btf, *id);
}

int32_t ebpf_obj_btf_member(struct ebpf_obj *o, const char *type, const char *member,
			    uint32_t *out)
{
	struct btf *btf = bpf_object__btf(o->obj);
	const struct btf_type *t;
	const struct btf_member *m;
	int id, i;

	call_begin();
	t = find_struct(o, type, &id);
	if (!t)
		return fail(-ENOENT, "no struct in BTF:", type);
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		long size;

		if (strcmp(btf__name_by_offset(btf, m->name_off), member))
			continue;
		size = btf__resolve_size(btf, m->type);
		if (size < 0)
			return fail((int)size, "cannot size member", member);
		out[0] = btf_member_bit_offset(t, i) / 8;
		out[1] = (uint32_t)size;
		return 0;
	}
	return fail(-ENOENT, "no member", member);
}

int32_t ebpf_obj_btf_size(struct ebpf_obj *o, const char *type)
{
	int id;

	call_begin();
	if (!find_struct(o, type, &id))
		return fail(-ENOENT, "no struct in BTF:", type);
	return (int32_t)btf__resolve_size(bpf_object__btf(o->obj), id);
}

double ebpf_obj_percpu_sum(struct ebpf_obj *o, const char *map, uint32_t key)
{
	struct bpf_map *m;
	uint64_t *values;
	double sum = 0;
	int ncpu, i, err;

	call_begin();
	m = bpf_object__find_map_by_name(o->obj, map);
	if (!m)
		return fail(-ENOENT, "no map", map);
	if (bpf_map__value_size(m) != sizeof(uint64_t))
		return fail(-EINVAL, "not a per-CPU u64 map:", map);
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return fail(ncpu, "count CPUs", NULL);
	values = calloc(ncpu, sizeof(*values));
	if (!values)
		return fail(-ENOMEM, "read map", map);
	err = bpf_map_lookup_elem(bpf_map__fd(m), &key, values);
	if (err) {
		free(values);
		return fail(-errno, "read map", map);
	}
	for (i = 0; i < ncpu; i++)
		sum += (double)values[i];
	free(values);
	return sum;
}

int32_t ebpf_obj_reuse_map(struct ebpf_obj *o, const char *map, int32_t fd)
{
	struct bpf_map *m;
	int err;

	call_begin();
	m = bpf_object__find_map_by_name(o->obj, map);
	if (!m)
		return -ENOENT; /* not an error: the object does not share that map */
	err = bpf_map__reuse_fd(m, fd);
	return err ? fail(err, "reuse map", map) : 0;
}

int32_t ebpf_obj_map_dup(struct ebpf_obj *o, const char *map)
{
	struct bpf_map *m;
	int fd;

	call_begin();
	m = bpf_object__find_map_by_name(o->obj, map);
	if (!m || bpf_map__fd(m) < 0)
		return fail(-ENOENT, "no loaded map", map);
	fd = fcntl(bpf_map__fd(m), F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? fail(-errno, "dup map", map) : fd;
}

void ebpf_fd_close(int32_t fd)
{
	if (fd >= 0)
		close(fd);
}

int32_t ebpf_obj_map_dump(struct ebpf_obj *o, const char *map, uint8_t *buf, uint32_t cap)
{
	struct bpf_map *m;
	uint32_t ksize, vsize, stride, used = 0;
	int32_t count = 0;
	uint8_t key[256], next[256];
	void *prev = NULL;
	int fd;

	call_begin();
	m = bpf_object__find_map_by_name(o->obj, map);
	fd = m ? bpf_map__fd(m) : -1;
	if (fd < 0)
		return fail(-ENOENT, "no loaded map", map);
	ksize = bpf_map__key_size(m);
	vsize = bpf_map__value_size(m);
	if (ksize > sizeof(key))
		return fail(-EINVAL, "key too large in map", map);
	stride = ((ksize + 7) & ~7u) + ((vsize + 7) & ~7u);
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, ksize);
		prev = key;
		if (cap - used < stride)
			return -ENOSPC;
		memset(buf + used, 0, stride);
		memcpy(buf + used, key, ksize);
		if (bpf_map_lookup_elem(fd, key, buf + used + ((ksize + 7) & ~7u)))
			continue; /* deleted meanwhile */
		used += stride;
		count++;
	}
	return count;
}

int32_t ebpf_obj_iter_read(struct ebpf_obj *o, const char *prog, uint8_t *buf, uint32_t cap)
{
	struct bpf_program *p;
	struct bpf_link *link;
	uint32_t used = 0;
	ssize_t n = 0;
	char extra;
	int fd, err;

	call_begin();
	p = bpf_object__find_program_by_name(o->obj, prog);
	if (!p)
		return fail(-ENOENT, "no program", prog);
	link = bpf_program__attach_iter(p, NULL);
	err = libbpf_get_error(link);
	if (err)
		return fail(err, "attach iterator", prog);
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		bpf_link__destroy(link);
		return fail(fd, "create iterator", prog);
	}
	while (used < cap && (n = read(fd, buf + used, cap - used)) > 0)
		used += n;
	if (used == cap && read(fd, &extra, 1) > 0)
		err = -ENOSPC;
	else if (n < 0)
		err = fail(-errno, "read iterator", prog);
	close(fd);
	bpf_link__destroy(link);
	return err ? err : (int32_t)used;
}

struct ebpf_ring *ebpf_ring_open(struct ebpf_obj *o, const char *map)
{
	struct ebpf_ring *r;
	struct bpf_map *m;
	int fd;

	call_begin();
	m = bpf_object__find_map_by_name(o->obj, map);
	fd = m ? bpf_map__fd(m) : -1;
	if (fd < 0 || bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) {
		fail(-ENOENT, "no loaded ring buffer", map);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		fail(-ENOMEM, "map ring", map);
		return NULL;
	}
	r->page = sysconf(_SC_PAGESIZE);
	r->mask = bpf_map__max_entries(m) - 1;
	r->consumer = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->consumer == MAP_FAILED) {
		fail(-errno, "mmap consumer page of", map);
		free(r);
		return NULL;
	}
	/* The data area is mapped once: every page the kernel maps counts in RSS, and the
	 * libbpf way (twice in a row, so that a record that wraps reads straight) doubles the
	 * rings' share of it. A record that wraps is put together by ring_copy or the bounce. */
	r->producer_len = r->page + (r->mask + 1);
	r->producer = mmap(NULL, r->producer_len, PROT_READ, MAP_SHARED, fd, r->page);
	if (r->producer == MAP_FAILED) {
		fail(-errno, "mmap data of", map);
		munmap(r->consumer, r->page);
		free(r);
		return NULL;
	}
	r->data = (uint8_t *)r->producer + r->page;
	r->fd = fd;
	return r;
}

/* Copies n bytes of the data area from position pos on, wrapping round its end. */
static void ring_copy(const struct ebpf_ring *r, uint64_t pos, uint8_t *dst, uint32_t n)
{
	uint64_t at = pos & r->mask, first = r->mask + 1 - at;

	if (n <= first) {
		memcpy(dst, r->data + at, n);
		return;
	}
	memcpy(dst, r->data + at, first);
	memcpy(dst + first, r->data, n - first);
}

int32_t ebpf_ring_drain(struct ebpf_ring *r, uint8_t *buf, uint32_t cap)
{
	uint64_t *consumer_pos = r->consumer, *producer_pos = r->producer;
	uint64_t cons = __atomic_load_n(consumer_pos, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n(producer_pos, __ATOMIC_ACQUIRE);
	uint32_t used = 0;

	while (cons < prod) {
		uint32_t *hdr = (uint32_t *)(r->data + (cons & r->mask));
		uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		uint32_t size, padded;

		if (len & BPF_RINGBUF_BUSY_BIT)
			break; /* still being written; it and everything after wait */
		size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		padded = (size + 7) & ~7u;
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			if (cap - used < padded + 8)
				break; /* the caller drains again with an empty buffer */
			((uint32_t *)(buf + used))[0] = size;
			((uint32_t *)(buf + used))[1] = 0;
			ring_copy(r, cons + BPF_RINGBUF_HDR_SZ, buf + used + 8, size);
			used += padded + 8;
		}
		cons += padded + BPF_RINGBUF_HDR_SZ;
	}
	__atomic_store_n(consumer_pos, cons, __ATOMIC_RELEASE);
	return (int32_t)used;
}

#define HUGE_PAGE (2UL << 20)

void *ebpf_arena_alloc(uint64_t size)
{
	/* Aligned to a huge page (older kernels do not align large anonymous maps): map a huge
	 * page more and unmap what lies outside the aligned range. */
	size_t len = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	uint8_t *p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *start;

	if (p == MAP_FAILED)
		return NULL;
	start = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
	if (start > p)
		munmap(p, start - p);
	munmap(start + len, p + HUGE_PAGE - start);
	madvise(start, len, MADV_HUGEPAGE); /* only a hint: without THP the pages are 4 KiB */
	return start;
}

uint32_t ebpf_ring_pending(struct ebpf_ring *r)
{
	uint64_t cons = __atomic_load_n((uint64_t *)r->consumer, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n((uint64_t *)r->producer, __ATOMIC_ACQUIRE);

	return (uint32_t)(prod - cons);
}

const uint8_t *ebpf_ring_peek(struct ebpf_ring *r, uint64_t *avail)
{
	uint64_t cons = __atomic_load_n((uint64_t *)r->consumer, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n((uint64_t *)r->producer, __ATOMIC_ACQUIRE);
	uint64_t at = cons & r->mask, to_end = r->mask + 1 - at;
	uint32_t len, whole;

	*avail = prod - cons;
	if (*avail <= to_end)
		return r->data + at;
	/* The bytes wrap round the end: up to it, unless the first record is the one that
	 * wraps (headers are 8-aligned, so a header never does). */
	len = __atomic_load_n((const uint32_t *)(r->data + at), __ATOMIC_ACQUIRE);
	whole = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
	whole = BPF_RINGBUF_HDR_SZ + ((whole + 7) & ~7u);
	if ((len & BPF_RINGBUF_BUSY_BIT) || whole <= to_end) {
		*avail = to_end;
		return r->data + at;
	}
	if (whole > r->bounce_cap) {
		uint8_t *grown = realloc(r->bounce, whole);

		if (!grown) {
			*avail = 0; /* it waits for memory: the next drain tries again */
			return r->data + at;
		}
		r->bounce = grown;
		r->bounce_cap = whole;
	}
	ring_copy(r, cons, r->bounce, whole);
	*avail = whole;
	return r->bounce;
}

void ebpf_ring_release(struct ebpf_ring *r, uint64_t bytes)
{
	uint64_t cons = __atomic_load_n((uint64_t *)r->consumer, __ATOMIC_ACQUIRE);

	__atomic_store_n((uint64_t *)r->consumer, cons + bytes, __ATOMIC_RELEASE);
}

void ebpf_ring_close(struct ebpf_ring *r)
{
	if (!r)
		return;
	munmap(r->producer, r->producer_len);
	munmap(r->consumer, r->page);
	free(r->bounce);
	free(r);
}

struct ebpf_waiter *ebpf_waiter_open(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ebpf_waiter *w;

	call_begin();
	w = calloc(1, sizeof(*w));
	if (!w) {
		fail(-ENOMEM, "waiter", NULL);
		return NULL;
	}
	w->kickfd = -1;
	pthread_mutex_init(&w->lock, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.ptr = NULL; /* the kick eventfd; rings have their struct */
	if (w->epfd < 0 || w->kickfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->kickfd, &ev)) {
		fail(-errno, "waiter", NULL);
		ebpf_waiter_close(w);
		return NULL;
	}
	return w;
}

int32_t ebpf_waiter_watch(struct ebpf_waiter *w, struct ebpf_ring *r, uint32_t wake_bytes)
{
	/* Edge-triggered: a ring with data is not "ready" by itself (that would end every wait at
	 * once); only the wake-up the BPF side forces past its threshold is. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = r };

	int err = 0;

	call_begin();
	pthread_mutex_lock(&w->lock);
	if (w->nr_rings == MAX_WATCHED)
		err = -ENOSPC;
	else if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, r->fd, &ev))
		err = -errno;
	else {
		r->wake_bytes = wake_bytes;
		w->rings[w->nr_rings++] = r;
	}
	pthread_mutex_unlock(&w->lock);
	return err ? fail(err, "watch ring", NULL) : 0;
}

static int watched(struct ebpf_waiter *w, struct ebpf_ring *r)
{
	int i;

	for (i = 0; i < w->nr_rings; i++)
		if (w->rings[i] == r)
			return i;
	return -1;
}

int32_t ebpf_waiter_unwatch(struct ebpf_waiter *w, struct ebpf_ring *r)
{
	int err = 0, i;

	call_begin();
	pthread_mutex_lock(&w->lock);
	if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, r->fd, NULL))
		err = -errno;
	i = watched(w, r);
	if (i >= 0)
		w->rings[i] = w->rings[--w->nr_rings];
	pthread_mutex_unlock(&w->lock);
	return err ? fail(err, "unwatch ring", NULL) : 0;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int32_t ebpf_waiter_wait(struct ebpf_waiter *w, int32_t timeout_ms)
{
	struct epoll_event evs[16];
	int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	uint64_t kicks;
	int n, i, rings, kicked;

	for (;;) {
		n = epoll_wait(w->epfd, evs, 16, timeout_ms);
		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		rings = 0;
		kicked = 0;
		pthread_mutex_lock(&w->lock);
		for (i = 0; i < n; i++) {
			struct ebpf_ring *r = evs[i].data.ptr;

			if (!r) {
				if (read(w->kickfd, &kicks, sizeof(kicks)) < 0 && errno != EAGAIN) {
					pthread_mutex_unlock(&w->lock);
					return -errno;
				}
				kicked = 1;
			} else if (watched(w, r) >= 0 && ebpf_ring_pending(r) >= r->wake_bytes) {
				rings++;
			}
			/* else unwatched since, or a stale edge: the BPF side forced wake-ups until
			 * the drain that followed the last one; waking Deno for it would find the
			 * ring drained */
		}
		pthread_mutex_unlock(&w->lock);
		if (n == 0 || rings || kicked)
			return rings;
		if (timeout_ms < 0)
			continue; /* no timeout */
		timeout_ms = (int32_t)(deadline - now_ms());
		if (timeout_ms <= 0)
			return 0;
	}
}

void ebpf_waiter_kick(struct ebpf_waiter *w)
{
	uint64_t one = 1;

	if (write(w->kickfd, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake-up is pending anyway */
	}
}

void ebpf_waiter_close(struct ebpf_waiter *w)
{
	if (!w)
		return;
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->kickfd >= 0)
		close(w->kickfd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* The running kernel's BTF, read once (it does not change while the kernel runs). */
static struct btf *vmlinux_btf;
static pthread_mutex_t vmlinux_btf_lock = PTHREAD_MUTEX_INITIALIZER;

static struct btf *kernel_btf(int *err)
{
	pthread_mutex_lock(&vmlinux_btf_lock);
	if (!vmlinux_btf) {
		struct btf *btf = btf__load_vmlinux_btf();

		*err = (int)libbpf_get_error(btf);
		if (!*err)
			vmlinux_btf = btf;
	}
	pthread_mutex_unlock(&vmlinux_btf_lock);
	return vmlinux_btf;
}

/* Whether struct or union t (or an anonymous struct or union inside it) has member. */
static int has_member(const struct btf *btf, const struct btf_type *t, const char *member,
		      int depth)
{
	const struct btf_member *m = btf_members(t);
	int i;

	for (i = 0; i < btf_vlen(t); i++, m++) {
		const char *n = btf__name_by_offset(btf, m->name_off);

		if (n && *n) {
			if (!strcmp(n, member))
				return 1;
		} else if (depth < 4) {
			const struct btf_type *inner = btf__type_by_id(btf, m->type);

			while (inner && (btf_is_mod(inner) || btf_is_typedef(inner)))
				inner = btf__type_by_id(btf, inner->type);
			if (inner && btf_is_composite(inner) && has_member(btf, inner, member, depth + 1))
				return 1;
		}
	}
	return 0;
}

int32_t ebpf_kernel_btf_has(const char *type, const char *member)
{
	static const struct { const char *prefix; int kind; } kinds[] = {
		{ "struct ", BTF_KIND_STRUCT }, { "union ", BTF_KIND_UNION },
		{ "enum ", BTF_KIND_ENUM },     { "typedef ", BTF_KIND_TYPEDEF },
	};
	const struct btf_type *t;
	struct btf *btf;
	int err = 0, kind = -1, id;
	size_t i;

	call_begin();
	btf = kernel_btf(&err);
	if (!btf)
		return fail(err, "read kernel BTF", NULL);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t l = strlen(kinds[i].prefix);

		if (!strncmp(type, kinds[i].prefix, l)) {
			kind = kinds[i].kind;
			type += l;
			break;
		}
	}
	if (kind < 0)
		return fail(-EINVAL, "say struct, union, enum or typedef:", type);
	id = btf__find_by_name_kind(btf, type, kind);
	if (id < 0 && kind == BTF_KIND_ENUM)
		id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM64);
	if (id < 0)
		return 0;
	if (!member || !*member)
		return 1;
	t = btf__type_by_id(btf, id);
	if (btf_is_composite(t))
		return has_member(btf, t, member, 0);
	for (i = 0; btf_is_enum(t) && i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(btf, btf_enum(t)[i].name_off), member))
			return 1;
	for (i = 0; btf_is_enum64(t) && i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(btf, btf_enum64(t)[i].name_off), member))
			return 1;
	return 0;
}

int32_t ebpf_kernel_enum(const char *name, char *buf, uint32_t cap)
{
	struct btf *btf;
	const struct btf_type *t;
	size_t used = 0;
	int err = 0, id, i;

	call_begin();
	btf = kernel_btf(&err);
	if (!btf)
		return fail(err, "read kernel BTF", NULL);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_ENUM);
	if (id < 0)
		return fail(-ENOENT, "no enum in kernel BTF:", name);
	t = btf__type_by_id(btf, id);
	for (i = 0; i < btf_vlen(t); i++) {
		const struct btf_enum *e = btf_enum(t) + i;
		/* an unsigned enum (kflag clear) prints as such: no negative codes */
		const char *fmt = btf_kflag(t) ? "%s=%d\n" : "%s=%u\n";
		int n = snprintf(used < cap ? buf + used : NULL, used < cap ? cap - used : 0, fmt,
				 btf__name_by_offset(btf, e->name_off), e->val);

		used += n;
	}
	return (int32_t)used;
}

double ebpf_boot_to_realtime_us(void)
{
	struct timespec boot, real;

	clock_gettime(CLOCK_BOOTTIME, &boot);
	clock_gettime(CLOCK_REALTIME, &real);
	return ((double)real.tv_sec - (double)boot.tv_sec) * 1e6 +
	       ((double)real.tv_nsec - (double)boot.tv_nsec) / 1e3;
}

int32_t ebpf_tracefs_ensure(void)
{
	struct statfs st;

	call_begin();
	/* Whether it is mounted, not whether this process may read it: tracefs is mode 0700, and
	 * access() would judge by the real uid with no capabilities (CAP_DAC_READ_SEARCH reads it). */
	if ((!statfs("/sys/kernel/tracing", &st) && st.f_type == TRACEFS_MAGIC) ||
	    !faccessat(AT_FDCWD, "/sys/kernel/debug/tracing/events", F_OK, AT_EACCESS))
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return fail(-errno, "mount tracefs at", "/sys/kernel/tracing");
	return 1;
}

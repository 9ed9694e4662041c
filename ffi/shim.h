/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The shim between Deno and libbpf: a few prefixed calls on opaque handles.
 * Calls that can fail return a negative errno (or NULL) and leave a message,
 * with libbpf's own log and the verifier log, for ebpf_error_copy(). */
#ifndef EBPF_SHIM_H
#define EBPF_SHIM_H

#include <stdint.h>

struct ebpf_obj;
struct ebpf_ring;

/* Copies the last error text (NUL-terminated, truncated to cap). Returns its full length. */
uint32_t ebpf_error_copy(char *buf, uint32_t cap);

/* Opens a BPF ELF object from bytes (copied); nothing is loaded yet. */
struct ebpf_obj *ebpf_obj_open(const void *data, uint32_t size, const char *name);
/* Before load: resize a map (a ring buffer's size must be a power of two multiple of the page size). */
int32_t ebpf_obj_set_map_size(struct ebpf_obj *obj, const char *map, uint32_t max_entries);
/* Before load: set a `const volatile` global of the object. */
int32_t ebpf_obj_set_const(struct ebpf_obj *obj, const char *name, const void *value,
			   uint32_t size);
/* The object's programs as "name\tsection\n" lines into buf (e.g. "tcp_life_state\t
 * tracepoint/sock/inet_sock_set_state"). Returns the full length needed. */
int32_t ebpf_obj_programs(struct ebpf_obj *obj, char *buf, uint32_t cap);
/* Before load: whether program `prog` is loaded (a hook this kernel lacks is left out). */
int32_t ebpf_obj_set_autoload(struct ebpf_obj *obj, const char *prog, int32_t on);
int32_t ebpf_obj_load(struct ebpf_obj *obj);
/* After load: attaches program `prog` (its link lives until ebpf_obj_detach or close). */
int32_t ebpf_obj_attach_prog(struct ebpf_obj *obj, const char *prog);
/* After load: attaches program `prog` (a cgroup_skb/ or cgroup/ section) to the cgroup v2
 * directory `cgroup` (-ENOTDIR when it is not one); the link lives as ebpf_obj_attach_prog's. */
int32_t ebpf_obj_attach_cgroup(struct ebpf_obj *obj, const char *prog, const char *cgroup);
/* Destroys every link the object's programs were attached with. */
void ebpf_obj_detach(struct ebpf_obj *obj);
void ebpf_obj_close(struct ebpf_obj *obj);

/* From the object's BTF: out[0] = byte offset, out[1] = byte size of type.member. */
int32_t ebpf_obj_btf_member(struct ebpf_obj *obj, const char *type, const char *member,
			    uint32_t *out);
/* From the object's BTF: the byte size of struct type, or a negative errno. */
int32_t ebpf_obj_btf_size(struct ebpf_obj *obj, const char *type);
/* Sum over CPUs of the u64 at key of a per-CPU array map; negative errno on failure. */
double ebpf_obj_percpu_sum(struct ebpf_obj *obj, const char *map, uint32_t key);

/* Before load: use an existing map (fd) for the object's map `map`; -ENOENT when it has none. */
int32_t ebpf_obj_reuse_map(struct ebpf_obj *obj, const char *map, int32_t fd);
/* After load: a new file descriptor of the object's map `map` (the caller closes it). */
int32_t ebpf_obj_map_dup(struct ebpf_obj *obj, const char *map);
void ebpf_fd_close(int32_t fd);
/* Copies every entry of a (non per-CPU) hash map as key bytes then value bytes, each entry
 * padded to 8 bytes. Returns the number of entries, or -ENOSPC when buf is too small. */
int32_t ebpf_obj_map_dump(struct ebpf_obj *obj, const char *map, uint8_t *buf, uint32_t cap);

/* Runs the object's BPF iterator program `prog` once and copies all it writes into buf.
 * Returns the number of bytes, or -ENOSPC when buf is too small. */
int32_t ebpf_obj_iter_read(struct ebpf_obj *obj, const char *prog, uint8_t *buf, uint32_t cap);

/* Maps a BPF ring buffer of a loaded object for draining. */
struct ebpf_ring *ebpf_ring_open(struct ebpf_obj *obj, const char *map);
/* Copies whole committed records into buf as [u32 length][u32 0][data, padded to 8 bytes]
 * and releases them from the ring. Stops before a record that would not fit.
 * Returns the number of bytes written. */
int32_t ebpf_ring_drain(struct ebpf_ring *ring, uint8_t *buf, uint32_t cap);
/* Bytes committed or reserved but not yet drained. */
uint32_t ebpf_ring_pending(struct ebpf_ring *ring);
void ebpf_ring_close(struct ebpf_ring *ring);

/* For a program's column writer (ffi/columns_<program>.c): the committed and reserved bytes
 * from the consumer position that lie contiguous (the data area is mapped once), and releasing
 * them. Where they wrap round the data's end, *avail stops at the end; when the first record
 * is the one that wraps, it alone is given, copied into a buffer of the ring's. A record may
 * end past *avail only there: a writer stops before it, and ebpf_ring_pending says more is
 * left. */
const uint8_t *ebpf_ring_peek(struct ebpf_ring *ring, uint64_t *avail);
void ebpf_ring_release(struct ebpf_ring *ring, uint64_t bytes);

/* The connection program's column writer (ffi/columns_connection.c): decodes struct
 * connection_event records from a ring (or, with ring NULL, from buf as ebpf_ring_drain writes
 * it) straight into the store's columns at rows slot .. slot+room-1, and describes each run of
 * records with one command and tally key in runs[]. out[] = { runs, rejected records, 1 when the
 * source is empty (0: room or runs ran out), bytes of buf consumed }. Returns rows written. */
struct ebpf_connection_columns;
struct ebpf_connection_run;
int32_t ebpf_connection_decode(struct ebpf_ring *ring, const uint8_t *buf, uint32_t len,
			       const struct ebpf_connection_columns *cols, uint32_t slot,
			       uint32_t room, double offset_ms, struct ebpf_connection_run *runs,
			       uint32_t runs_cap, uint32_t *out);
/* sizeof(struct connection_event) << 16 | sizeof(struct connection_unix_event), checked
 * against the BPF object's BTF by the decoder. */
uint32_t ebpf_connection_sizes(void);

/* The column writer of the other programs (ffi/columns_plan.c): decodes records of at least
 * record_size bytes from a ring (or, with ring NULL, from buf as ebpf_ring_drain writes it) into
 * the columns a copy plan of nsteps steps names, rows from `slot`, at most `room`; one string
 * run per change of a string step's bytes goes to `runs` (at most runs_cap; a record whose runs
 * do not fit waits). out[0] = runs, out[1] = records rejected (too short), out[2] = 1 when the
 * source is empty, out[3] = bytes consumed. Returns the rows written, or -EINVAL. */
struct ebpf_copy_step;
struct ebpf_str_run;
int32_t ebpf_plan_decode(struct ebpf_ring *ring, const uint8_t *buf, uint32_t len,
			 const struct ebpf_copy_step *steps, uint32_t nsteps, uint32_t record_size,
			 uint32_t slot, uint32_t room, double offset_ms, struct ebpf_str_run *runs,
			 uint32_t runs_cap, uint32_t *out);

/* Memory for store columns: `size` bytes of zeroed anonymous memory, in transparent huge pages
 * where the kernel allows (a page fault per 2 MiB instead of per 4 KiB). It never moves and is
 * never freed (store tables live as long as the process). NULL on failure. */
void *ebpf_arena_alloc(uint64_t size);

/* Waiting for rings: an epoll set of rings that wakes when a BPF program forces a wake-up (its
 * ring passed the object's `wake_bytes`), when kicked, or after a timeout. The wait is the one
 * call made off Deno's thread (nonblocking); the others are quick. */
struct ebpf_waiter;
struct ebpf_waiter *ebpf_waiter_open(void);
/* A wake-up from `ring` counts when it holds at least wake_bytes then (the object's own
 * `wake_bytes`): the edges the BPF side forces until a drain are not woken for again. At most
 * 64 rings; unwatch a ring before closing it (after unwatch the waiting thread never reads it). */
int32_t ebpf_waiter_watch(struct ebpf_waiter *waiter, struct ebpf_ring *ring, uint32_t wake_bytes);
int32_t ebpf_waiter_unwatch(struct ebpf_waiter *waiter, struct ebpf_ring *ring);
/* Blocks up to timeout_ms (-1: until a wake-up or a kick); returns how many rings woke it
 * (0: timeout or kick), or -errno. */
int32_t ebpf_waiter_wait(struct ebpf_waiter *waiter, int32_t timeout_ms);
/* Ends the current (or next) wait at once; safe from any thread. */
void ebpf_waiter_kick(struct ebpf_waiter *waiter);
void ebpf_waiter_close(struct ebpf_waiter *waiter);

/* Whether the running kernel's BTF has `type` ("struct x", "union x", "enum x", "typedef x"),
 * and, when member is not empty, that member (of a struct or union, anonymous ones inside it
 * included) or enumerator: 1 or 0, or a negative errno when the BTF cannot be read. */
int32_t ebpf_kernel_btf_has(const char *type, const char *member);
/* The running kernel's enum `name` from its BTF, as "NAME=value\n" lines into buf.
 * Returns the full length needed, or a negative errno. */
int32_t ebpf_kernel_enum(const char *name, char *buf, uint32_t cap);

/* Makes sure tracefs is mounted (tracepoints are found through it): 0 when it already was,
 * 1 when this call mounted it at /sys/kernel/tracing, or a negative errno. */
int32_t ebpf_tracefs_ensure(void);

/* CLOCK_REALTIME minus CLOCK_BOOTTIME, in microseconds (BPF timestamps are boot time). */
double ebpf_boot_to_realtime_us(void);

#endif /* EBPF_SHIM_H */

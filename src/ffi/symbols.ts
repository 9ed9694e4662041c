/**
 * The typed symbol table of `ffi/shim.c`: the only native functions the server calls.
 * Hot-path calls take and return 32-bit numbers so no BigInt is made per call.
 *
 * @module
 */

export const symbols = {
  /** uint32_t ebpf_error_copy(char *buf, uint32_t cap) */
  ebpf_error_copy: { parameters: ["buffer", "u32"], result: "u32" },
  /** struct ebpf_obj *ebpf_obj_open(const void *data, uint32_t size, const char *name) */
  ebpf_obj_open: { parameters: ["buffer", "u32", "buffer"], result: "pointer" },
  /** int32_t ebpf_obj_set_map_size(struct ebpf_obj *, const char *map, uint32_t max_entries) */
  ebpf_obj_set_map_size: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  /** int32_t ebpf_obj_set_const(struct ebpf_obj *, const char *name, const void *value, uint32_t size) */
  ebpf_obj_set_const: { parameters: ["pointer", "buffer", "buffer", "u32"], result: "i32" },
  /** int32_t ebpf_obj_programs(struct ebpf_obj *, char *buf, uint32_t cap) */
  ebpf_obj_programs: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  /** int32_t ebpf_obj_set_autoload(struct ebpf_obj *, const char *prog, int32_t on) */
  ebpf_obj_set_autoload: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t ebpf_obj_load(struct ebpf_obj *) */
  ebpf_obj_load: { parameters: ["pointer"], result: "i32" },
  /** int32_t ebpf_obj_attach_prog(struct ebpf_obj *, const char *prog) */
  ebpf_obj_attach_prog: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int32_t ebpf_obj_attach_cgroup(struct ebpf_obj *, const char *prog, const char *cgroup) */
  ebpf_obj_attach_cgroup: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** void ebpf_obj_detach(struct ebpf_obj *) */
  ebpf_obj_detach: { parameters: ["pointer"], result: "void" },
  /** void ebpf_obj_close(struct ebpf_obj *) */
  ebpf_obj_close: { parameters: ["pointer"], result: "void" },
  /** int32_t ebpf_obj_btf_member(struct ebpf_obj *, const char *type, const char *member, uint32_t out[2]) */
  ebpf_obj_btf_member: { parameters: ["pointer", "buffer", "buffer", "buffer"], result: "i32" },
  /** int32_t ebpf_obj_btf_size(struct ebpf_obj *, const char *type) */
  ebpf_obj_btf_size: { parameters: ["pointer", "buffer"], result: "i32" },
  /** double ebpf_obj_percpu_sum(struct ebpf_obj *, const char *map, uint32_t key) */
  ebpf_obj_percpu_sum: { parameters: ["pointer", "buffer", "u32"], result: "f64" },
  /** int32_t ebpf_obj_reuse_map(struct ebpf_obj *, const char *map, int32_t fd) */
  ebpf_obj_reuse_map: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t ebpf_obj_map_dup(struct ebpf_obj *, const char *map) */
  ebpf_obj_map_dup: { parameters: ["pointer", "buffer"], result: "i32" },
  /** void ebpf_fd_close(int32_t fd) */
  ebpf_fd_close: { parameters: ["i32"], result: "void" },
  /** int32_t ebpf_obj_map_dump(struct ebpf_obj *, const char *map, uint8_t *buf, uint32_t cap) */
  ebpf_obj_map_dump: { parameters: ["pointer", "buffer", "buffer", "u32"], result: "i32" },
  /** int32_t ebpf_obj_iter_read(struct ebpf_obj *, const char *prog, uint8_t *buf, uint32_t cap) */
  ebpf_obj_iter_read: { parameters: ["pointer", "buffer", "buffer", "u32"], result: "i32" },
  /** struct ebpf_ring *ebpf_ring_open(struct ebpf_obj *, const char *map) */
  ebpf_ring_open: { parameters: ["pointer", "buffer"], result: "pointer" },
  /** int32_t ebpf_ring_drain(struct ebpf_ring *, uint8_t *buf, uint32_t cap) */
  ebpf_ring_drain: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  /** uint32_t ebpf_ring_pending(struct ebpf_ring *) */
  ebpf_ring_pending: { parameters: ["pointer"], result: "u32" },
  /** void ebpf_ring_close(struct ebpf_ring *) */
  ebpf_ring_close: { parameters: ["pointer"], result: "void" },
  /**
   * int32_t ebpf_connection_decode(struct ebpf_ring *, const uint8_t *buf, uint32_t len,
   *   const struct ebpf_connection_columns *, uint32_t slot, uint32_t room, double offset_ms,
   *   struct ebpf_connection_run *runs, uint32_t runs_cap, uint32_t out[4])
   */
  ebpf_connection_decode: {
    parameters: [
      "pointer",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "u32",
      "f64",
      "buffer",
      "u32",
      "buffer",
    ],
    result: "i32",
  },
  /** uint32_t ebpf_connection_sizes(void) */
  ebpf_connection_sizes: { parameters: [], result: "u32" },
  /**
   * int32_t ebpf_plan_decode(struct ebpf_ring *, const uint8_t *buf, uint32_t len,
   *   const struct ebpf_copy_step *steps, uint32_t nsteps, uint32_t record_size, uint32_t slot,
   *   uint32_t room, double offset_ms, struct ebpf_str_run *runs, uint32_t runs_cap,
   *   uint32_t out[4])
   */
  ebpf_plan_decode: {
    parameters: [
      "pointer",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "f64",
      "buffer",
      "u32",
      "buffer",
    ],
    result: "i32",
  },
  /** void *ebpf_arena_alloc(uint64_t size) */
  ebpf_arena_alloc: { parameters: ["u64"], result: "pointer" },
  /** struct ebpf_waiter *ebpf_waiter_open(void) */
  ebpf_waiter_open: { parameters: [], result: "pointer" },
  /** int32_t ebpf_waiter_watch(struct ebpf_waiter *, struct ebpf_ring *, uint32_t wake_bytes) */
  ebpf_waiter_watch: { parameters: ["pointer", "pointer", "u32"], result: "i32" },
  /** int32_t ebpf_waiter_unwatch(struct ebpf_waiter *, struct ebpf_ring *) */
  ebpf_waiter_unwatch: { parameters: ["pointer", "pointer"], result: "i32" },
  /** int32_t ebpf_waiter_wait(struct ebpf_waiter *, int32_t timeout_ms): blocks, so off-thread */
  ebpf_waiter_wait: { parameters: ["pointer", "i32"], result: "i32", nonblocking: true },
  /** void ebpf_waiter_kick(struct ebpf_waiter *) */
  ebpf_waiter_kick: { parameters: ["pointer"], result: "void" },
  /** void ebpf_waiter_close(struct ebpf_waiter *) */
  ebpf_waiter_close: { parameters: ["pointer"], result: "void" },
  /** int32_t ebpf_kernel_btf_has(const char *type, const char *member) */
  ebpf_kernel_btf_has: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int32_t ebpf_kernel_enum(const char *name, char *buf, uint32_t cap) */
  ebpf_kernel_enum: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
  /** int32_t ebpf_tracefs_ensure(void) */
  ebpf_tracefs_ensure: { parameters: [], result: "i32" },
  /** double ebpf_boot_to_realtime_us(void) */
  ebpf_boot_to_realtime_us: { parameters: [], result: "f64" },
} as const satisfies Deno.ForeignLibraryInterface;

export type Shim = Deno.DynamicLibrary<typeof symbols>["symbols"];

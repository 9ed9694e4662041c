/**
 * Opens the shim and wraps its opaque handles in classes. Return codes become {@linkcode ShimError}s
 * carrying libbpf's log (and the verifier's, when a load fails).
 *
 * @module
 */

import { readAsset } from "../assets.ts";
import { type Shim, symbols } from "./symbols.ts";

export const SHIM_ASSET = "libebpf_shim.so";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A failed shim call: `message` says what failed, `log` holds libbpf's and the verifier's text. */
export class ShimError extends Error {
  /** What failed, without the log. */
  readonly what: string;
  readonly code: number;
  readonly log: string;

  constructor(message: string, code: number, log: string) {
    super(log ? `${message}: ${lastLine(log)}` : message);
    this.name = "ShimError";
    this.what = message;
    this.code = code;
    this.log = log;
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1];
}

function cstr(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text + "\0");
}

let library: Deno.DynamicLibrary<typeof symbols> | undefined;

/**
 * Opens the shim once per process: its bytes are written to a private temporary file that is
 * opened and removed at once (the same path from source and from the compiled executable).
 */
export function shim(): Shim {
  if (library) return library.symbols;
  const bytes = readAsset(SHIM_ASSET);
  const path = Deno.makeTempFileSync({ prefix: "ebpf-server-shim-", suffix: ".so" });
  try {
    Deno.chmodSync(path, 0o600);
    Deno.writeFileSync(path, bytes);
    library = Deno.dlopen(path, symbols);
  } finally {
    Deno.removeSync(path);
  }
  return library.symbols;
}

/** The text of the shim's last error. */
function lastError(): string {
  const lib = shim();
  const buf = new Uint8Array(64 * 1024);
  const len = lib.ebpf_error_copy(buf, buf.length);
  return decoder.decode(buf.subarray(0, Math.min(len, buf.length - 1)));
}

/** Throws a ShimError when `code` is negative; returns it otherwise. */
function unwrap(code: number, what: string): number {
  if (code < 0) throw new ShimError(what, code, lastError());
  return code;
}

/** A BPF object file opened from bytes: set it up, load it, attach it, read from it. */
export class BpfObject {
  #handle: Deno.PointerObject | null;
  readonly name: string;

  /** Opens (but does not load) the object; `name` appears in errors and in `bpftool`. */
  constructor(bytes: Uint8Array<ArrayBuffer>, name: string) {
    const handle = shim().ebpf_obj_open(bytes, bytes.length, cstr(name));
    if (!handle) throw new ShimError(`cannot open BPF object ${name}`, -1, lastError());
    this.#handle = handle;
    this.name = name;
  }

  get #h(): Deno.PointerObject {
    if (!this.#handle) throw new Error(`BPF object ${this.name} is closed`);
    return this.#handle;
  }

  /** Before load: sets a map's max_entries (for a ring buffer, its size in bytes). */
  setMapSize(map: string, maxEntries: number): void {
    unwrap(
      shim().ebpf_obj_set_map_size(this.#h, cstr(map), maxEntries),
      `cannot resize map ${map} of ${this.name}`,
    );
  }

  /** Before load: sets a `const volatile __u32` global. */
  setConstU32(name: string, value: number): void {
    const bytes = new Uint8Array(new Uint32Array([value]).buffer);
    unwrap(
      shim().ebpf_obj_set_const(this.#h, cstr(name), bytes, 4),
      `cannot set ${name} of ${this.name}`,
    );
  }

  /** Before load: sets a `const volatile` global of any type from its bytes (an array, say). */
  setConst(name: string, bytes: Uint8Array<ArrayBuffer>): void {
    unwrap(
      shim().ebpf_obj_set_const(this.#h, cstr(name), bytes, bytes.length),
      `cannot set ${name} of ${this.name}`,
    );
  }

  /** The object's BPF programs: name and ELF section (`tracepoint/skb/kfree_skb`, `iter/tcp`). */
  programs(): { name: string; section: string }[] {
    const lib = shim();
    let buf = new Uint8Array(4096);
    let len = unwrap(lib.ebpf_obj_programs(this.#h, buf, buf.length), `cannot list programs`);
    if (len >= buf.length) {
      buf = new Uint8Array(len + 1);
      len = unwrap(lib.ebpf_obj_programs(this.#h, buf, buf.length), `cannot list programs`);
    }
    return decoder.decode(buf.subarray(0, len)).split("\n").filter((l) => l).map((line) => {
      const [name, section] = line.split("\t");
      return { name, section };
    });
  }

  /** Before load: leaves program `prog` out of the load (a hook this kernel does not have). */
  setAutoload(prog: string, on: boolean): void {
    unwrap(
      shim().ebpf_obj_set_autoload(this.#h, cstr(prog), on ? 1 : 0),
      `cannot set autoload of ${prog} in ${this.name}`,
    );
  }

  /** Loads every program and map into the kernel (runs the verifier). */
  load(): void {
    unwrap(shim().ebpf_obj_load(this.#h), `cannot load ${this.name}`);
  }

  /** Attaches one loaded program; its link lives until {@linkcode detach} or close. */
  attachProgram(prog: string): void {
    unwrap(shim().ebpf_obj_attach_prog(this.#h, cstr(prog)), `cannot attach ${prog}`);
  }

  /**
   * Attaches one loaded `cgroup_skb/` or `cgroup/` program to a cgroup v2 directory (libbpf's
   * generic attach does not know which cgroup); detached as {@linkcode attachProgram}'s are.
   */
  attachCgroup(prog: string, cgroup: string): void {
    unwrap(
      shim().ebpf_obj_attach_cgroup(this.#h, cstr(prog), cstr(cgroup)),
      `cannot attach ${prog} to ${cgroup}`,
    );
  }

  /** Detaches every attached program (the object stays loaded). */
  detach(): void {
    shim().ebpf_obj_detach(this.#h);
  }

  /** Byte offset and size of `type.member` from the object's BTF. */
  member(type: string, member: string): { offset: number; size: number } {
    const out = new Uint32Array(2);
    unwrap(
      shim().ebpf_obj_btf_member(this.#h, cstr(type), cstr(member), new Uint8Array(out.buffer)),
      `cannot find ${type}.${member} in ${this.name}`,
    );
    return { offset: out[0], size: out[1] };
  }

  /** Byte size of struct `type` from the object's BTF. */
  structSize(type: string): number {
    return unwrap(
      shim().ebpf_obj_btf_size(this.#h, cstr(type)),
      `cannot find struct ${type} in ${this.name}`,
    );
  }

  /** Sum over CPUs of a per-CPU u64 counter. */
  percpuSum(map: string, key = 0): number {
    return unwrap(
      shim().ebpf_obj_percpu_sum(this.#h, cstr(map), key),
      `cannot read ${map} of ${this.name}`,
    );
  }

  /** Before load: makes the object use an existing map; false when it has no such map. */
  reuseMap(map: string, fd: number): boolean {
    const code = shim().ebpf_obj_reuse_map(this.#h, cstr(map), fd);
    if (code === -2) return false;
    unwrap(code, `cannot share map ${map} with ${this.name}`);
    return true;
  }

  /** After load: a new file descriptor of a map; close it with {@linkcode closeFd}. */
  dupMap(map: string): number {
    return unwrap(shim().ebpf_obj_map_dup(this.#h, cstr(map)), `cannot dup map ${map}`);
  }

  /**
   * Every entry of a hash map as `[key, value]` byte views (each padded to 8 bytes), read with
   * one FFI call.
   */
  dumpMap(map: string, keySize: number, valueSize: number): { key: DataView; value: DataView }[] {
    const stride = pad8(keySize) + pad8(valueSize);
    let buf = this.#dumpBuf;
    for (;;) {
      const n = shim().ebpf_obj_map_dump(this.#h, cstr(map), buf, buf.length);
      if (n === -28) { // ENOSPC
        buf = this.#dumpBuf = new Uint8Array(buf.length * 4);
        continue;
      }
      unwrap(n, `cannot read map ${map} of ${this.name}`);
      const out = [];
      for (let i = 0; i < n; i++) {
        out.push({
          key: new DataView(buf.buffer, i * stride, keySize),
          value: new DataView(buf.buffer, i * stride + pad8(keySize), valueSize),
        });
      }
      return out;
    }
  }
  #dumpBuf = new Uint8Array(64 * 1024);

  /** Runs an iterator program once; returns what it wrote (a view valid until the next call). */
  readIterator(prog: string): Uint8Array {
    for (;;) {
      const n = shim().ebpf_obj_iter_read(this.#h, cstr(prog), this.#dumpBuf, this.#dumpBuf.length);
      if (n === -28) { // ENOSPC
        this.#dumpBuf = new Uint8Array(this.#dumpBuf.length * 4);
        continue;
      }
      unwrap(n, `cannot run iterator ${prog} of ${this.name}`);
      return this.#dumpBuf.subarray(0, n);
    }
  }

  /** Maps a loaded ring buffer for draining. */
  ring(map: string): RingBuffer {
    const handle = shim().ebpf_ring_open(this.#h, cstr(map));
    if (!handle) throw new ShimError(`cannot map ring ${map} of ${this.name}`, -1, lastError());
    return new RingBuffer(handle);
  }

  /** Detaches, unloads and frees everything; safe to call twice. */
  close(): void {
    if (!this.#handle) return;
    shim().ebpf_obj_close(this.#handle);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A mapped BPF ring buffer. {@linkcode RingBuffer.drain} copies whole records into a buffer
 * Deno owns (one FFI call per batch) as `[u32 length][u32 0][record, padded to 8 bytes]`.
 */
export class RingBuffer {
  #handle: Deno.PointerObject | null;

  constructor(handle: Deno.PointerObject) {
    this.#handle = handle;
  }

  /** Copies committed records into `buf`; returns the number of bytes written. */
  drain(buf: Uint8Array<ArrayBuffer>): number {
    if (!this.#handle) return 0;
    return shim().ebpf_ring_drain(this.#handle, buf, buf.length);
  }

  /** The native handle, for a {@linkcode RingWaiter}; null once closed. */
  get handle(): Deno.PointerObject | null {
    return this.#handle;
  }

  /** Bytes in the ring not yet drained. */
  pending(): number {
    return this.#handle ? shim().ebpf_ring_pending(this.#handle) : 0;
  }

  close(): void {
    if (!this.#handle) return;
    shim().ebpf_ring_close(this.#handle);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Waits, off Deno's thread, until a watched ring asks to be drained (its BPF program forces a
 * wake-up once the ring holds `wake_bytes`), {@linkcode RingWaiter.kick} is called, or a
 * timeout passes. Close it only when no wait is pending: {@linkcode RingWaiter.close} does that.
 */
export class RingWaiter {
  #handle: Deno.PointerObject | null;
  #pending: Promise<number> | null = null;

  constructor() {
    const handle = shim().ebpf_waiter_open();
    if (!handle) throw new ShimError("cannot create a ring waiter", -1, lastError());
    this.#handle = handle;
  }

  /**
   * Adds a ring: its wake-ups end a wait when it holds at least `wakeBytes` (its program's
   * `wake_bytes`), so the ones its BPF side keeps forcing until the drain do not wake again.
   */
  watch(ring: RingBuffer, wakeBytes: number): void {
    if (!this.#handle || !ring.handle) return;
    unwrap(shim().ebpf_waiter_watch(this.#handle, ring.handle, wakeBytes), "cannot watch a ring");
  }

  unwatch(ring: RingBuffer): void {
    if (!this.#handle || !ring.handle) return;
    unwrap(shim().ebpf_waiter_unwatch(this.#handle, ring.handle), "cannot unwatch a ring");
  }

  /**
   * Resolves with how many rings woke it (0: timeout or kick); `timeoutMs` -1 waits until a
   * wake-up or a kick. One wait at a time.
   */
  wait(timeoutMs: number): Promise<number> {
    if (!this.#handle) return Promise.resolve(0);
    if (this.#pending) throw new Error("RingWaiter.wait: a wait is already pending");
    const pending = shim().ebpf_waiter_wait(this.#handle, Math.trunc(timeoutMs));
    this.#pending = pending;
    return pending.finally(() => this.#pending = null).then((n) =>
      unwrap(n, "cannot wait for rings")
    );
  }

  /** Ends the pending wait (or the next one) at once. */
  kick(): void {
    if (this.#handle) shim().ebpf_waiter_kick(this.#handle);
  }

  /** Ends any pending wait, waits for it to return, then frees the waiter. */
  async close(): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    this.#handle = null;
    const pending = this.#pending;
    if (pending) {
      shim().ebpf_waiter_kick(handle);
      await pending.catch(() => {});
    }
    shim().ebpf_waiter_close(handle);
  }
}

/**
 * `bytes` of zeroed memory from the shim, in transparent huge pages where the kernel allows: one
 * page fault per 2 MiB rather than per 4 KiB while a store fills (bench/decode_bench.ts shows
 * both). It is never freed: store tables live as long as the process.
 */
export function hugePageBuffer(bytes: number): ArrayBuffer {
  const pointer = shim().ebpf_arena_alloc(BigInt(bytes));
  if (!pointer) throw new RangeError(`cannot map ${bytes} bytes for the store`);
  return Deno.UnsafePointerView.getArrayBuffer(pointer, bytes);
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** Closes a file descriptor the shim handed out. */
export function closeFd(fd: number): void {
  shim().ebpf_fd_close(fd);
}

/**
 * Whether the running kernel's BTF has `type` (`"struct sk_buff"`, `"enum skb_drop_reason"`,
 * `"union x"`, `"typedef x"`) and, when given, its `member` (or enumerator). This is how the
 * server probes for a kernel feature: never by version number.
 *
 * @example kernelBtfHas("struct trace_event_raw_kfree_skb", "reason") // false before 5.17
 */
export function kernelBtfHas(type: string, member = ""): boolean {
  const found = unwrap(
    shim().ebpf_kernel_btf_has(cstr(type), cstr(member)),
    `cannot look up ${type} in the kernel's BTF`,
  );
  return found === 1;
}

/** The running kernel's enum `name` from its BTF, as value -> name (throws when it has none). */
export function kernelEnum(name: string): Map<number, string> {
  const lib = shim();
  let buf = new Uint8Array(16 * 1024);
  let len = unwrap(lib.ebpf_kernel_enum(cstr(name), buf, buf.length), `cannot read enum ${name}`);
  if (len >= buf.length) {
    buf = new Uint8Array(len + 1);
    len = unwrap(lib.ebpf_kernel_enum(cstr(name), buf, buf.length), `cannot read enum ${name}`);
  }
  const result = new Map<number, string>();
  for (const line of decoder.decode(buf.subarray(0, len)).split("\n")) {
    const eq = line.lastIndexOf("=");
    if (eq > 0) result.set(Number(line.slice(eq + 1)), line.slice(0, eq));
  }
  return result;
}

/** Microseconds to add to a CLOCK_BOOTTIME reading to get Unix time. */
export function bootToRealtimeMicros(): number {
  return shim().ebpf_boot_to_realtime_us();
}

/** Mounts tracefs when it is not mounted (tracepoints are attached through it); true if it did. */
export function ensureTracefs(): boolean {
  return unwrap(shim().ebpf_tracefs_ensure(), "cannot mount tracefs") === 1;
}

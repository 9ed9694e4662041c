/**
 * Loads, attaches, drains and stops the programs. One program failing does not stop the others;
 * each can be stopped and started again at run time. Counters are kept across restarts.
 *
 * @module
 */

import { readAsset } from "../assets.ts";
import {
  bootToRealtimeMicros,
  BpfObject,
  closeFd,
  ensureTracefs,
  type RingBuffer,
  RingWaiter,
  ShimError,
} from "../ffi/shim.ts";
import { cgroup2Root } from "../kernel/cgroup.ts";
import { isLogEnabled, log } from "../log.ts";
import type { EventTable, Store } from "../store/mod.ts";
import { batchDecoderOf } from "./batch.ts";
import {
  explainLog,
  failedProgramOf,
  type FeatureStatus,
  type HookStatus,
  probeFeatures,
  tracepointExists,
  tracepointOf,
} from "./capabilities.ts";
import type { BatchDecoder, Clock, Program } from "./program.ts";
import { RunLog } from "./run_log.ts";
import { DEFAULTS } from "../config.ts";

export type ProgramState = "running" | "stopped" | "failed";

/** What `/api/programs` and `/health` show of a program. */
export interface ProgramStatus {
  name: string;
  description: string;
  state: ProgramState;
  /** Why it failed (the lines of libbpf's and the verifier's log that say why), or null. */
  error: string | null;
  /** The end of libbpf's log of the failed start (at most {@linkcode ERROR_LOG_CHARS}), or null. */
  error_log: string | null;
  /** Events decoded into the store since the server started. */
  events: number;
  /** Events the kernel could not hand over (ring buffer full), since the server started. */
  lost: number;
  /** Bytes of its ring buffer in the kernel (what `lost` depends on). */
  ring_size_bytes: number;
  /** Events of this program evicted from the store. */
  evicted: number;
  /** Events of this program held in the store now. */
  stored: number;
  /** Records that could not be decoded (and were counted, not stored). */
  decode_errors: number;
  /** When it was last started (RFC 3339), or null. */
  started_at: string | null;
  /** When it last stopped running (stopped, or failed while it ran), or null. */
  stopped_at: string | null;
  /** The times it did not run since it first started, oldest first (the last 64). */
  stopped_periods: { from: string; until: string | null }[];
}

export interface ManagerOptions {
  /**
   * Bytes of every program's BPF ring buffer (a power of two, at least a page); absent: each
   * program's own `ringSize`, else {@linkcode DEFAULTS}' (16 MiB).
   */
  ringSize?: number;
  /**
   * The longest an event waits in a ring before it is drained, in ms. A ring that fills to a
   * half of its size is drained at once, and queries drain before they read.
   */
  drainIntervalMs: number;
  /** The pid whose events are not recorded (the server's own). */
  selfPid: number;
  /** The server's HTTP port, whose connections are not recorded (0: none). */
  selfPort?: number;
  /**
   * Optional hooks to leave out as if this kernel lacked them (`EBPF_SERVER_LEAVE_OUT_HOOKS`):
   * how the tests see the fallbacks of a kernel they do not run on.
   */
  leaveOut?: readonly string[];
}

interface Running {
  obj: BpfObject;
  ring: RingBuffer;
  /** Event fields this kernel cannot give it (answer null). */
  unknownFields: ReadonlySet<string>;
  decode: BatchDecoder;
  sample?: (now: number) => void;
  /** The kernel's lost counter at the last sample. */
  lostSampled: number;
  /** The kernel's lost counter as last read, and when (performance.now()). */
  lostRead: number;
  lostReadAt: number;
}

/** What `/api/capabilities` shows of a program. */
export interface ProgramCapabilities {
  name: string;
  state: ProgramState;
  hooks: HookStatus[];
  features: FeatureStatus[];
  /** Event fields this kernel cannot give it (null in its events). */
  unknown_fields: string[];
}

/** Maps that every object declaring them shares (bpf/include/sock_owner.h). */
const SHARED_MAPS = ["sock_owner"];
const SAMPLE_INTERVAL_MS = 1000;
/** How much of libbpf's log of a failed start a status shows (the verifier's can be huge). */
const ERROR_LOG_CHARS = 8192;
/** A kernel lost counter read this recently (ms) is not read again for a status. */
const LOST_FRESH_MS = 10;

interface Slot {
  program: Program;
  table: EventTable;
  state: ProgramState;
  error: string | null;
  log: string | null;
  running: Running | null;
  events: number;
  lostBefore: number;
  decodeErrors: number;
  startedAt: number | null;
  /** Its hooks as the last start left them, or null before the first. */
  hooks: HookStatus[] | null;
  /** Its kernel features, probed at its first start. */
  features: FeatureStatus[] | null;
  runs: RunLog;
}

/**
 * A ring wakes the server once this share of it holds events (`wake_bytes` of the BPF side):
 * the other half is the room for what arrives until the drain (at 400k connects/s, about
 * 0.2 s with the default 16 MiB ring). Half, not a quarter: half as many wake-ups under load.
 */
const WAKE_RING_SHARE = 1 / 2;
/** While a live stream is open, the rings are drained at least this often (ms). */
const STREAM_INTERVAL_MS = 50;

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * Whether a section's program attaches to a cgroup (`cgroup_skb/egress`, `cgroup/connect4`):
 * libbpf's generic attach cannot, it needs the cgroup. They go on the cgroup v2 root, which
 * holds every socket of the host, whichever network namespace it is in.
 */
function attachesToCgroup(section: string): boolean {
  return section.startsWith("cgroup_skb/") || section.startsWith("cgroup/");
}

/** The cgroup v2 root's mount point, or an error that says what to do. */
function cgroupRoot(): string {
  const root = cgroup2Root();
  if (root === null) {
    throw new Error(
      "no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo); mount one, e.g. mount -t cgroup2 none /sys/fs/cgroup",
    );
  }
  return root;
}

/** Inode number of this process's network namespace, or 0. */
function ownNetns(): number {
  try {
    return Deno.statSync("/proc/self/ns/net").ino ?? 0;
  } catch {
    return 0;
  }
}

/**
 * A change of the boot-to-wall-clock offset below this (ms) is measurement jitter (two clock
 * reads, slower in a VM), not a clock step: it is ignored, so one kernel timestamp reads as the
 * same wall time in every answer (a connection's start in `/open` and in its close record).
 */
const OFFSET_JITTER_MS = 0.05;

/** Boot-time to wall-clock conversion, re-measured every second. */
class BootClock implements Clock {
  #offsetMs = NaN;
  #measuredAt = -Infinity;

  refresh(): void {
    const now = performance.now();
    if (now - this.#measuredAt < 1000) return;
    const measured = bootToRealtimeMicros() / 1000;
    if (!(Math.abs(measured - this.#offsetMs) <= OFFSET_JITTER_MS)) this.#offsetMs = measured;
    this.#measuredAt = now;
  }

  wallMs(lo: number, hi: number): number {
    return (hi * 4294967296 + lo) / 1e6 + this.#offsetMs;
  }

  get offsetMs(): number {
    return this.#offsetMs;
  }
}

/** Owns every program's kernel objects and moves their events into the store. */
export class ProgramManager {
  readonly #slots = new Map<string, Slot>();
  readonly #store: Store;
  readonly #options: ManagerOptions;
  readonly #clock = new BootClock();

  /** Bytes of the program's ring buffer. */
  #ringSize(slot: Slot): number {
    return this.#options.ringSize ?? slot.program.ringSize ?? DEFAULTS.ringSize;
  }

  /** Bytes in the program's ring that make its BPF side force a wake-up. */
  #wakeBytes(slot: Slot): number {
    return Math.floor(this.#ringSize(slot) * WAKE_RING_SHARE);
  }
  /** Set while the drain loop runs. */
  #waiter: RingWaiter | null = null;
  #loop: Promise<void> | null = null;
  /** The server's HTTP port, known once it listens. */
  set selfPort(port: number) {
    this.#options.selfPort = port;
  }
  readonly #sharedFds = new Map<string, number>();
  readonly #drainListeners = new Set<() => void>();
  #lastSample = 0;

  constructor(programs: Iterable<Program>, store: Store, options: ManagerOptions) {
    this.#store = store;
    this.#options = options;
    for (const program of programs) {
      this.#slots.set(program.name, {
        program,
        table: store.table(program.name, program.columns),
        state: "stopped",
        error: null,
        log: null,
        running: null,
        events: 0,
        lostBefore: 0,
        decodeErrors: 0,
        startedAt: null,
        hooks: null,
        features: null,
        runs: new RunLog(),
      });
    }
  }

  /** Boot-time to wall-clock conversion shared by every decoder. */
  get clock(): Clock {
    this.#clock.refresh();
    return this.#clock;
  }

  /** The loaded object of a running program (for on-demand reads such as iterators), or null. */
  object(name: string): BpfObject | null {
    return this.#slot(name).running?.obj ?? null;
  }

  /** Event fields the kernel cannot give a running program (none when it is not running). */
  unknownFields(name: string): ReadonlySet<string> {
    return this.#slot(name).running?.unknownFields ?? new Set();
  }

  /**
   * What a program does on this kernel: each hook attached or not (and why), each kernel
   * feature probed and the way chosen, and the fields the kernel cannot give. Before its first
   * start, the hooks are read from its object (nothing is loaded).
   */
  capabilities(name: string): ProgramCapabilities {
    const slot = this.#slot(name);
    const features = this.#features(slot);
    let hooks = slot.hooks;
    if (!hooks) {
      const obj = new BpfObject(readAsset(`bpf/${name}.bpf.o`), name);
      try {
        const optional = slot.program.optionalHooks ?? {};
        hooks = obj.programs().map(({ name: program, section }) => ({
          program,
          attach: section,
          optional: Object.hasOwn(optional, program),
          attached: false,
          reason: `${name} has not been started`,
          fields_unknown: [...(optional[program] ?? [])],
        }));
      } finally {
        obj.close();
      }
    } else if (!slot.running) {
      hooks = hooks.map((h) => ({
        ...h,
        attached: false,
        reason: h.reason ?? `${name} is ${slot.state}`,
      }));
    }
    const unknown = new Set(features.flatMap((f) => f.fields_unknown));
    if (slot.running) { for (const field of slot.running.unknownFields) unknown.add(field); }
    return {
      name,
      state: slot.state,
      hooks,
      features,
      unknown_fields: [...unknown].sort(),
    };
  }

  /**
   * In short, for `/health` (no object is opened): per program, the fields this kernel cannot
   * give and the hooks the last start left out.
   */
  kernelShort(): { unknown_fields: Record<string, string[]>; hooks_left_out: string[] } {
    const unknown: Record<string, string[]> = {};
    const leftOut: string[] = [];
    for (const [name, slot] of this.#slots) {
      const fields = new Set(slot.features?.flatMap((f) => f.fields_unknown) ?? []);
      for (const field of slot.running?.unknownFields ?? []) fields.add(field);
      if (fields.size) unknown[name] = [...fields].sort();
      for (const hook of slot.hooks ?? []) {
        if (hook.optional && !hook.attached) leftOut.push(`${name}/${hook.program}`);
      }
    }
    return { unknown_fields: unknown, hooks_left_out: leftOut };
  }

  /** Whether a program of that name exists. */
  has(name: string): boolean {
    return this.#slots.has(name);
  }

  /**
   * Starts the drain loop. It sleeps (off Deno's thread, in the shim) until a ring holds a
   * half of its size (the BPF side then forces a wake-up), until `drainIntervalMs` passed,
   * or, while a live stream is open, until {@linkcode STREAM_INTERVAL_MS} passed; then drains.
   * An idle server wakes once per interval; a busy one once per half ring, not per event
   * (each wake-up of Deno's event loop costs about 125 µs of CPU here, bench/README.md).
   */
  startDraining(): void {
    if (this.#waiter) return;
    const waiter = new RingWaiter();
    this.#waiter = waiter;
    for (const slot of this.#slots.values()) {
      if (slot.running) waiter.watch(slot.running.ring, this.#wakeBytes(slot));
    }
    const interval = this.#options.drainIntervalMs;
    this.#loop = (async () => {
      // The wait for a ring's wake-up has no timeout and stays pending across timer drains:
      // the interval is a timer of Deno's own, which wakes only this thread (a wait that timed
      // out every second cost a thread hand-off each time, about half of the idle CPU).
      let woken: Promise<void> | null = null;
      while (this.#waiter === waiter) {
        const timeout = this.#drainListeners.size
          ? Math.min(STREAM_INTERVAL_MS, interval)
          : interval;
        woken ??= waiter.wait(-1).then(
          () => {
            woken = null;
          },
          async (err) => {
            log.warn("cannot wait for the rings", { error: String(err) });
            await new Promise((resolve) => setTimeout(resolve, timeout)); // then wait again
            woken = null;
          },
        );
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([woken, new Promise((resolve) => timer = setTimeout(resolve, timeout))]);
        clearTimeout(timer);
        if (this.#waiter !== waiter) break;
        this.drain();
      }
    })();
  }

  /**
   * Loads and attaches a program; a no-op when it runs. Hooks the kernel lacks (or refuses) that
   * the program runs without are left out, and the fields they fill become unknown. On failure
   * the program is `failed`, its error (with the lines of libbpf's log that say why) kept, and
   * the error thrown.
   */
  start(name: string): ProgramStatus {
    const slot = this.#slot(name);
    if (slot.state === "running") return this.#status(slot);
    let obj: BpfObject | undefined;
    let ring: RingBuffer | undefined;
    try {
      ensureTracefs();
      const features = this.#features(slot);
      const { hooks, loaded } = this.#load(slot);
      obj = loaded;
      this.#keepSharedMaps(obj);
      this.#attach(obj, hooks);
      slot.hooks = hooks;
      this.#clock.refresh();
      const unknownFields = new Set([
        ...features.flatMap((f) => f.fields_unknown),
        ...hooks.flatMap((h) => h.attached ? [] : h.fields_unknown),
      ]);
      const ctx = { obj, store: this.#store, table: slot.table, clock: this.#clock, unknownFields };
      const decode = batchDecoderOf(slot.program, ctx);
      const sample = slot.program.sampler?.(ctx);
      ring = obj.ring("events");
      this.#waiter?.watch(ring, this.#wakeBytes(slot));
      slot.running = {
        obj,
        ring,
        unknownFields,
        decode,
        sample,
        lostSampled: 0,
        lostRead: 0,
        lostReadAt: -Infinity,
      };
      slot.state = "running";
      slot.error = null;
      slot.log = null;
      slot.startedAt = Date.now();
      slot.runs.started(slot.startedAt);
      const missing = hooks.filter((h) => !h.attached && !h.attach.startsWith("iter/"));
      log.info("program attached", {
        program: name,
        ...(missing.length ? { without: missing.map((h) => `${h.program} (${h.reason})`) } : {}),
      });
      return this.#status(slot);
    } catch (err) {
      ring?.close();
      obj?.close();
      slot.state = "failed";
      slot.log = (err as { log?: string }).log ?? null;
      const message = err instanceof Error ? err.message : String(err);
      slot.error = err instanceof ShimError && err.log
        ? `${err.what}: ${explainLog(err.log)}`
        : message;
      log.error("program failed", { program: name, error: slot.error });
      if (slot.log) log.debug("libbpf log", { program: name, log: slot.log });
      throw Object.assign(new Error(slot.error, { cause: err }), { log: slot.log });
    }
  }

  /** The program's kernel features, probed once (the kernel's BTF does not change). */
  #features(slot: Slot): FeatureStatus[] {
    return slot.features ??= probeFeatures(slot.program.kernelFeatures ?? []);
  }

  /** Opens and sets up the program's object, ready to load. */
  #open(slot: Slot): BpfObject {
    const obj = new BpfObject(readAsset(`bpf/${slot.program.name}.bpf.o`), slot.program.name);
    try {
      obj.setMapSize("events", this.#ringSize(slot));
      obj.setConstU32("self_tgid", this.#options.selfPid);
      obj.setConstU32("wake_bytes", this.#wakeBytes(slot));
      slot.program.configure?.(obj, {
        pid: this.#options.selfPid,
        port: this.#options.selfPort ?? 0,
        netns: ownNetns(),
      });
      for (const [map, fd] of this.#sharedFds) obj.reuseMap(map, fd);
      return obj;
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /**
   * Loads the object. An optional hook whose tracepoint this kernel lacks is left out before
   * load; one the kernel refuses is left out and the object loaded again without it (libbpf
   * loads all of an object's programs or none). A required hook that cannot load fails it.
   */
  #load(slot: Slot): { hooks: HookStatus[]; loaded: BpfObject } {
    const optional = slot.program.optionalHooks ?? {};
    const leftOut = new Map<string, string>();
    for (const hook of this.#options.leaveOut ?? []) {
      if (Object.hasOwn(optional, hook)) {
        leftOut.set(hook, "left out (EBPF_SERVER_LEAVE_OUT_HOOKS)");
      }
    }
    for (;;) {
      const obj = this.#open(slot);
      const hooks = obj.programs().map(({ name, section }): HookStatus => ({
        program: name,
        attach: section,
        optional: Object.hasOwn(optional, name),
        attached: false,
        reason: null,
        fields_unknown: [...(optional[name] ?? [])],
      }));
      try {
        for (const hook of hooks) {
          const tp = tracepointOf(hook.attach);
          if (tp && !tracepointExists(tp.category, tp.name)) {
            const why = `this kernel has no tracepoint ${tp.category}:${tp.name}`;
            if (!hook.optional) throw new Error(`${slot.program.name} needs ${why.slice(5)}`);
            leftOut.set(hook.program, why);
          }
          const reason = leftOut.get(hook.program);
          if (reason !== undefined) {
            hook.reason = reason;
            obj.setAutoload(hook.program, false);
          }
        }
        obj.load();
        return { hooks, loaded: obj };
      } catch (err) {
        obj.close();
        const failed = err instanceof ShimError ? failedProgramOf(err.log) : null;
        if (!failed || !Object.hasOwn(optional, failed) || leftOut.has(failed)) throw err;
        leftOut.set(failed, `the kernel refused it: ${explainLog((err as ShimError).log)}`);
        log.warn("optional hook left out", { program: slot.program.name, hook: failed });
      }
    }
  }

  /**
   * Attaches every loaded hook but iterators (run on demand), cgroup programs to the cgroup v2
   * root, the others with libbpf's attach for their section. An optional hook that does not
   * attach is recorded as such; a required one detaches everything and fails.
   */
  #attach(obj: BpfObject, hooks: HookStatus[]): void {
    for (const hook of hooks) {
      if (hook.reason !== null) continue; // left out of the load
      if (hook.attach.startsWith("iter/")) {
        hook.reason = "an iterator: run on each request";
        continue;
      }
      try {
        if (attachesToCgroup(hook.attach)) obj.attachCgroup(hook.program, cgroupRoot());
        else obj.attachProgram(hook.program);
        hook.attached = true;
      } catch (err) {
        if (!hook.optional) {
          obj.detach();
          throw err;
        }
        hook.reason = `cannot attach: ${(err as Error).message}`;
      }
    }
  }

  /** Drains what is left, then detaches and unloads a program; a no-op when it is not running. */
  stop(name: string): ProgramStatus {
    const slot = this.#slot(name);
    const running = slot.running;
    if (running) {
      this.#drainSlot(slot);
      this.#sampleSlot(slot, Date.now());
      slot.lostBefore += this.#lostNow(slot, true);
      this.#waiter?.unwatch(running.ring);
      running.ring.close();
      running.obj.close();
      slot.running = null;
      slot.runs.stopped(Date.now());
      log.info("program stopped", { program: name });
    }
    if (slot.state === "running") slot.state = "stopped";
    return this.#status(slot);
  }

  /** Stops the drain loop (waiting for it to end) and every program. */
  async close(): Promise<void> {
    const waiter = this.#waiter;
    this.#waiter = null;
    if (waiter) {
      await waiter.close();
      await this.#loop;
    }
    for (const name of this.#slots.keys()) this.stop(name);
    for (const fd of this.#sharedFds.values()) closeFd(fd);
    this.#sharedFds.clear();
  }

  /** Keeps a descriptor of each shared map the first object that has it created. */
  #keepSharedMaps(obj: BpfObject): void {
    for (const map of SHARED_MAPS) {
      if (this.#sharedFds.has(map)) continue;
      try {
        this.#sharedFds.set(map, obj.dupMap(map));
      } catch {
        // this object does not declare that map
      }
    }
  }

  /** Logs the growth of kernel counters: lost events, and the program's own. */
  #sampleSlot(slot: Slot, now: number): void {
    const running = slot.running;
    if (!running) return;
    const lost = this.#lostNow(slot, true);
    this.#store.counters(slot.program.name).add(now, "lost", lost - running.lostSampled);
    running.lostSampled = lost;
    try {
      running.sample?.(now);
    } catch (err) {
      log.warn("cannot sample counters", { program: slot.program.name, error: String(err) });
    }
  }

  /**
   * Whether a program ran through the whole window `(since, until]` (Unix ms): started before
   * it, and not stopped or failed inside it.
   */
  ranThrough(name: string, since: number, until: number): boolean {
    return this.#slot(name).runs.ranThrough(since, until);
  }

  /** Status of one program. */
  status(name: string): ProgramStatus {
    return this.#status(this.#slot(name));
  }

  /** Status of every program. */
  statuses(): ProgramStatus[] {
    return [...this.#slots.values()].map((slot) => this.#status(slot));
  }

  /** Moves every ring's records into the store; returns how many events were decoded. */
  drain(): number {
    return this.#drainAll(false);
  }

  /** Drains every ring and reads every kernel counter now, so a query sees the latest. */
  refresh(): void {
    this.#drainAll(true);
  }

  /** Calls `listener` after every drain (live streams follow the store this way). */
  onDrain(listener: () => void): () => void {
    this.#drainListeners.add(listener);
    this.#waiter?.kick(); // the next wait uses the live-stream interval
    return () => this.#drainListeners.delete(listener);
  }

  #drainAll(sample: boolean): number {
    this.#clock.refresh();
    let n = 0;
    for (const slot of this.#slots.values()) if (slot.running) n += this.#drainSlot(slot);
    for (const listener of this.#drainListeners) listener();
    const now = Date.now();
    if (sample || now - this.#lastSample >= SAMPLE_INTERVAL_MS) {
      this.#lastSample = now;
      for (const slot of this.#slots.values()) this.#sampleSlot(slot, now);
    }
    return n;
  }

  #drainSlot(slot: Slot): number {
    const { ring, decode } = slot.running!;
    const appended = slot.table.appended;
    const { events, rejected, error } = decode(ring);
    if (rejected) {
      if (slot.decodeErrors < 10) {
        log.warn("cannot decode records", { program: slot.program.name, rejected, error });
      }
      slot.decodeErrors += rejected;
    }
    if (isLogEnabled("debug")) this.#logEvents(slot, appended);
    slot.events += events;
    return events;
  }

  /** Logs the rows appended to a slot's table since it had `from` (those still held). */
  #logEvents(slot: Slot, from: number): void {
    const table = slot.table;
    const oldest = table.appended - table.length;
    for (let seq = Math.max(from, oldest); seq < table.appended; seq++) {
      const json = JSON.stringify(
        slot.program.toJson(table, table.slot(seq - oldest), this.#store),
      );
      log.debug("event", { json });
    }
  }

  /**
   * The kernel's lost counter of a running program: read again when the last read is older than
   * {@linkcode LOST_FRESH_MS} (each read is a bpf syscall: /health under load would make one per
   * program per request), or when `exact`.
   */
  #lostNow(slot: Slot, exact = false): number {
    const running = slot.running;
    if (!running) return 0;
    const now = performance.now();
    if (!exact && now - running.lostReadAt < LOST_FRESH_MS) return running.lostRead;
    try {
      running.lostRead = running.obj.percpuSum("lost");
      running.lostReadAt = now;
    } catch {
      // unreadable: the last value stands
    }
    return running.lostRead;
  }

  #slot(name: string): Slot {
    const slot = this.#slots.get(name);
    if (!slot) throw new RangeError(`no program named '${name}'`);
    return slot;
  }

  #status(slot: Slot): ProgramStatus {
    const name = slot.program.name;
    return {
      name,
      description: slot.program.description,
      state: slot.state,
      error: slot.error,
      error_log: slot.log === null ? null : slot.log.slice(-ERROR_LOG_CHARS),
      events: slot.events,
      lost: slot.lostBefore + this.#lostNow(slot),
      ring_size_bytes: this.#ringSize(slot),
      evicted: this.#store.evicted(name),
      stored: slot.table.length,
      decode_errors: slot.decodeErrors,
      started_at: iso(slot.startedAt),
      stopped_at: iso(slot.runs.stoppedAt),
      stopped_periods: slot.runs.periods.map((p) => ({ from: iso(p.from)!, until: iso(p.until) })),
    };
  }
}

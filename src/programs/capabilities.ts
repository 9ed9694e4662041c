/**
 * What a program needs of the running kernel, and what it does where the kernel lacks it: the
 * hooks it can run without, and the features it probes for in the kernel's BTF (its BPF side
 * takes the same decision with CO-RE: `bpf_core_field_exists`, `bpf_core_type_exists`). Never a
 * kernel version number: a missing feature degrades a field, never a program.
 *
 * @module
 */

import { kernelBtfHas } from "../ffi/shim.ts";

/** Something a program looks for in the running kernel's BTF. */
export interface KernelFeature {
  /** A short name, e.g. `drop_reason`. */
  name: string;
  /** The BTF type (`"struct x"`, `"enum y"`) and, when given, its member or enumerator. */
  probe: { type: string; member?: string };
  /** What the program does when the kernel has it. */
  present: string;
  /** What it does when not. */
  absent: string;
  /** Event fields that are unknown (null) without it. */
  fields?: readonly string[];
}

/** A kernel feature as probed on this kernel. */
export interface FeatureStatus {
  name: string;
  /** `struct x.member` as looked up. */
  probe: string;
  available: boolean;
  /** What the program does here (the `present` or `absent` text). */
  chosen: string;
  /** Fields unknown (null) on this kernel because of it. */
  fields_unknown: string[];
}

/** One BPF program (hook) of a program's object, as the last start left it. */
export interface HookStatus {
  /** The BPF program's name in the object (`tcp_life_send_reset`). */
  program: string;
  /** Its ELF section: what it attaches to (`tracepoint/tcp/tcp_send_reset`). */
  attach: string;
  /** Whether the program runs without it. */
  optional: boolean;
  attached: boolean;
  /** Why it is not attached, or null. */
  reason: string | null;
  /** Fields unknown (null) while it is not attached. */
  fields_unknown: string[];
}

/** Probes every feature in the running kernel's BTF. */
export function probeFeatures(features: readonly KernelFeature[]): FeatureStatus[] {
  return features.map((feature) => {
    const { type, member } = feature.probe;
    const available = kernelBtfHas(type, member ?? "");
    return {
      name: feature.name,
      probe: member ? `${type}.${member}` : type,
      available,
      chosen: available ? feature.present : feature.absent,
      fields_unknown: available ? [] : [...(feature.fields ?? [])],
    };
  });
}

/** The tracepoint of a `tracepoint/<category>/<name>` (or `tp/...`) section, or null. */
export function tracepointOf(section: string): { category: string; name: string } | null {
  const m = /^(?:tracepoint|tp)\/([^/]+)\/([^/]+)$/.exec(section);
  return m ? { category: m[1], name: m[2] } : null;
}

const TRACEFS_DIRS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/** Whether the running kernel has tracepoint `category:name` (looked up in tracefs). */
export function tracepointExists(category: string, name: string): boolean {
  for (const dir of TRACEFS_DIRS) {
    try {
      Deno.statSync(`${dir}/events/${category}/${name}`);
      return true;
    } catch {
      // not there, or not this tracefs
    }
  }
  return false;
}

/** The BPF program that libbpf's log says failed to load, or null. */
export function failedProgramOf(log: string): string | null {
  const m = /prog '([^']+)': (?:BPF program load failed|failed to load|relo #\d+: )/.exec(log);
  return m ? m[1] : null;
}

/** Lines of a verifier log that say nothing about why it refused. */
const VERIFIER_NOISE = /^(processed \d+ insns|verification time|stack depth|max_states_per_insn)/;

/**
 * The lines of libbpf's log (and the verifier's) that say why an object did not load: the
 * verifier's last words for the program it refused, or libbpf's own lines naming a program,
 * instead of the generic last line ("failed to load object").
 */
export function explainLog(log: string): string {
  const lines = log.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const begin = lines.findIndex((l) => l.includes("-- BEGIN PROG LOAD LOG --"));
  if (begin >= 0) {
    const prog = /prog '([^']+)'/.exec(lines[begin])?.[1] ?? "a program";
    const end = lines.findIndex((l, i) => i > begin && l.includes("-- END PROG LOAD LOG --"));
    const body = lines.slice(begin + 1, end < 0 ? undefined : end)
      .filter((l) => !VERIFIER_NOISE.test(l));
    const core = body.find((l) => l.includes("failed to resolve CO-RE relocation")) ??
      body.find((l) => l.includes("CO-RE relocation"));
    const why = core ? [core.replace(/^\d+: /, "")] : body.slice(-2);
    if (why.length) return `the verifier refused ${prog}: ${why.join("; ")}`;
  }
  const named = lines
    .filter((l) => /prog '[^']+'/.test(l) && !/LOAD LOG/.test(l))
    .map((l) => l.replace(/^libbpf: /, ""));
  if (named.length) return named.slice(0, 3).join("; ");
  const own = lines.filter((l) => !/^libbpf: failed to load object/.test(l));
  return (own.length ? own : lines).slice(-2).join("; ");
}

/**
 * Checks made before anything is loaded, so a user without the privileges it needs, or a kernel
 * without BPF support, gets one clear sentence instead of a libbpf log.
 *
 * The server needs exactly the {@linkcode CAPABILITIES} below (root has them all). Each was found
 * by running every program as a non-root uid with one capability taken away (README, "Security").
 *
 * @module
 */

/** A capability the server uses: its name, its bit in `CapEff`, and what it is needed for. */
export interface Capability {
  /** As capabilities(7) and systemd spell it, e.g. `CAP_BPF`. */
  readonly name: string;
  readonly bit: number;
  /** What for, after "to": "CAP_BPF (to load its BPF programs and maps)". */
  readonly purpose: string;
  /** Whether the server refuses to start without it (else it warns and degrades a field). */
  readonly required: boolean;
  /** Needed only when one of these programs is enabled (absent: whatever runs). */
  readonly programs?: readonly string[];
}

/** Every capability the server needs, and no other. */
export const CAPABILITIES: readonly Capability[] = [
  { name: "CAP_BPF", bit: 39, purpose: "load its BPF programs and maps", required: true },
  {
    name: "CAP_PERFMON",
    bit: 38,
    purpose: "attach them to tracepoints and let them read kernel memory",
    required: true,
  },
  {
    name: "CAP_DAC_READ_SEARCH",
    bit: 2,
    purpose: "read the tracepoint ids in tracefs, whose /sys/kernel/tracing is mode 0700",
    required: true,
  },
  {
    name: "CAP_NET_ADMIN",
    bit: 12,
    purpose:
      "load the dns program's cgroup_skb and cgroup/connect programs and attach them to the cgroup v2 root",
    required: true,
    programs: ["dns"],
  },
  {
    name: "CAP_SYSLOG",
    bit: 34,
    purpose:
      "read kernel symbol addresses in /proc/kallsyms, for the location_symbol of packet drops",
    required: false,
  },
];

const CAP_SYS_ADMIN = 21;

/** The capabilities as `setpriv` names them: `+bpf,+perfmon,...`. */
export function setprivCaps(caps: readonly Capability[] = CAPABILITIES): string {
  return caps.map((c) => `+${c.name.slice(4).toLowerCase()}`).join(",");
}

const HOW_TO_GRANT = `run it as root (sudo ebpf-server) or grant it ${
  CAPABILITIES.map((c) => c.name).join(" ")
} (AmbientCapabilities= in its systemd unit, as deploy/ebpf-server.service does, or setpriv --inh-caps=${setprivCaps()} --ambient-caps=${setprivCaps()})`;

/** What the checks look at, gathered by {@linkcode gatherFacts} (tests give their own). */
export interface PreflightFacts {
  /** The effective capability mask (`CapEff` of /proc/self/status). */
  effective: bigint;
  /** tracefs: readable by this process, mounted but not readable, or not mounted. */
  tracefs: "readable" | "unreadable" | "unmounted";
  /** Whether /proc/kallsyms shows this process real addresses. */
  kallsyms: boolean;
  /** Whether the kernel has BTF (/sys/kernel/btf/vmlinux). */
  btf: boolean;
  /**
   * `kernel.perf_event_paranoid`, or null when unreadable. Above 2 (Debian's default is 3, from
   * its kernel patch) only CAP_SYS_ADMIN may open perf events, which tracepoints attach through.
   */
  perfEventParanoid?: number | null;
}

/** What the checks found: a reason not to start (one sentence), and warnings. */
export interface PreflightResult {
  problem: string | null;
  warnings: string[];
}

function has(caps: bigint, bit: number): boolean {
  return (caps & (1n << BigInt(bit))) !== 0n;
}

function joinAnd(words: string[]): string {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/**
 * Decides from the facts whether the server can run. CAP_SYS_ADMIN stands in for CAP_BPF and
 * CAP_PERFMON (the kernel accepts either), and tracefs counts as readable however it is (root
 * owns it; CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE read it).
 */
export function checkPreflight(
  facts: PreflightFacts,
  enabled: readonly string[] = [],
): PreflightResult {
  const caps = facts.effective;
  const admin = has(caps, CAP_SYS_ADMIN);
  const lacking: Capability[] = [];
  for (const cap of CAPABILITIES) {
    if (!cap.required) continue;
    if (cap.programs && !cap.programs.some((p) => enabled.includes(p))) continue;
    if (cap.name === "CAP_DAC_READ_SEARCH") {
      if (facts.tracefs === "unreadable") lacking.push(cap);
    } else if (!has(caps, cap.bit) && !admin) {
      lacking.push(cap);
    }
  }
  if (lacking.length) {
    const which = joinAnd(lacking.map((c) => `${c.name} (to ${c.purpose})`));
    const only = [...new Set(lacking.flatMap((c) => c.programs ?? []))];
    const leaveOut = only.length === lacking.length && only.length > 0
      ? `, or leave ${joinAnd(only)} out of --programs (${
        enabled.filter((p) => !only.includes(p)).join(",") || "..."
      })`
      : "";
    return {
      problem: `it lacks ${which}: ${HOW_TO_GRANT}${leaveOut}`,
      warnings: [],
    };
  }
  if (facts.tracefs === "unmounted" && !admin) {
    return {
      problem:
        "tracefs is not mounted and mounting it needs CAP_SYS_ADMIN: mount it first (mount -t tracefs tracefs /sys/kernel/tracing) or run it as root (sudo ebpf-server)",
      warnings: [],
    };
  }
  const paranoid = facts.perfEventParanoid ?? null;
  if (paranoid !== null && paranoid > 2 && !admin) {
    return {
      problem:
        `kernel.perf_event_paranoid is ${paranoid} (Debian's default), under which the kernel lets only CAP_SYS_ADMIN open the perf events its tracepoints attach through: set it to 2 (sysctl -w kernel.perf_event_paranoid=2, and a file in /etc/sysctl.d/ to keep it) or run it as root (sudo ebpf-server)`,
      warnings: [],
    };
  }
  if (!facts.btf) {
    return {
      problem:
        "this kernel offers no BTF (/sys/kernel/btf/vmlinux is missing), which ebpf-server needs for its BPF programs: use Linux 5.8 or newer built with CONFIG_DEBUG_INFO_BTF=y",
      warnings: [],
    };
  }
  const warnings: string[] = [];
  if (!facts.kallsyms) {
    warnings.push(
      "cannot see kernel symbol addresses in /proc/kallsyms, so the location_symbol of packet drops is null: grant CAP_SYSLOG to have them",
    );
  }
  return { problem: null, warnings };
}

/** The effective capability mask of this process. */
function effectiveCaps(): bigint {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return m ? BigInt("0x" + m[1]) : 0n;
  } catch {
    return 0n;
  }
}

/** Where tracefs is mounted (libbpf prefers the debugfs path), from /proc/self/mountinfo. */
function tracefsMount(): string | null {
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return null;
  }
  const points = new Set<string>();
  for (const line of text.split("\n")) {
    // "36 25 0:12 / /sys/kernel/tracing rw,nosuid shared:15 - tracefs tracefs rw"
    const dash = line.indexOf(" - ");
    if (dash < 0 || line.slice(dash + 3).split(" ")[0] !== "tracefs") continue;
    points.add(line.split(" ")[4]);
  }
  for (const path of ["/sys/kernel/debug/tracing", "/sys/kernel/tracing"]) {
    if (points.has(path)) return path;
  }
  return null;
}

function tracefsState(): PreflightFacts["tracefs"] {
  const path = tracefsMount();
  if (path === null) return "unmounted";
  try {
    Deno.readDirSync(`${path}/events`)[Symbol.iterator]().next();
    return "readable";
  } catch {
    return "unreadable";
  }
}

/**
 * Whether /proc/kallsyms shows a non-zero address for the first text symbol. The file gives a
 * page or so per read, and on some kernels (5.10) the first pages are all per-CPU symbols
 * (type A): it is read until the first text symbol, at most 4 MiB.
 */
function kallsymsVisible(): boolean {
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync("/proc/kallsyms");
    const buf = new Uint8Array(1 << 16);
    const decoder = new TextDecoder();
    let rest = "";
    for (let total = 0; total < 1 << 22;) {
      const n = file.readSync(buf);
      if (n === null || n === 0) return false;
      total += n;
      const lines = (rest + decoder.decode(buf.subarray(0, n), { stream: true })).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        const [addr, type] = line.split(" ");
        if (type === "t" || type === "T") return /[1-9a-f]/.test(addr);
      }
    }
    return false;
  } catch {
    return false;
  } finally {
    file?.close();
  }
}

/** Reads what {@linkcode checkPreflight} decides on from this process and this host. */
export function gatherFacts(): PreflightFacts {
  let btf = true;
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch {
    btf = false;
  }
  let perfEventParanoid: number | null = null;
  try {
    const text = Deno.readTextFileSync("/proc/sys/kernel/perf_event_paranoid").trim();
    if (/^-?\d+$/.test(text)) perfEventParanoid = Number(text);
  } catch {
    // unreadable: the kernel says so at attach
  }
  return {
    perfEventParanoid,
    effective: effectiveCaps(),
    tracefs: tracefsState(),
    kallsyms: kallsymsVisible(),
    btf,
  };
}

/**
 * Why this process cannot run the monitor with the `enabled` programs (null when it can), and
 * what it will lack.
 */
export function preflight(enabled: readonly string[]): PreflightResult {
  return checkPreflight(gatherFacts(), enabled);
}

/**
 * Checks made before anything is loaded, so a user without root or without BPF support gets
 * one clear sentence instead of a libbpf log.
 *
 * @module
 */

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

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

function has(caps: bigint, cap: bigint): boolean {
  return (caps & (1n << cap)) !== 0n;
}

/** Why this process cannot run the monitor, or null when it can. */
export function preflightProblem(): string | null {
  const caps = effectiveCaps();
  if (!has(caps, CAP_SYS_ADMIN) && !(has(caps, CAP_BPF) && has(caps, CAP_PERFMON))) {
    return "it must run as root (or with CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) to load its BPF programs; try: sudo ebpf-server";
  }
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch {
    return "this kernel offers no BTF (/sys/kernel/btf/vmlinux is missing), which ebpf-server needs for its BPF programs: use Linux 5.8 or newer built with CONFIG_DEBUG_INFO_BTF=y";
  }
  return null;
}

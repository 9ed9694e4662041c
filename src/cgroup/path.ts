/**
 * What a cgroup v2 path says about its processes: the systemd unit they run in and the
 * container, from the names systemd, Docker, containerd, CRI-O, Podman and the kubelet give
 * their cgroups. Nothing is asked of a runtime: the path is all there is.
 *
 * @module
 */

/** Who a cgroup belongs to, as its path names it; null where the path does not say. */
export interface CgroupOwner {
  /** The deepest systemd unit on the path: `nginx.service`, `session-3.scope`, `user.slice`. */
  unit: string | null;
  /** The 64-hex id of the deepest container on the path. */
  container_id: string | null;
  /** `docker`, `containerd`, `cri-o`, `podman`, or `cri` (a kubepods path without a prefix). */
  container_runtime: string | null;
}

const UNIT_SUFFIX = /\.(service|scope|slice|socket|mount|swap|timer|target|device|path|automount)$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** systemd scope names of container runtimes: `<prefix><64 hex>.scope`. */
const SCOPE_PREFIXES: readonly [string, string][] = [
  ["docker-", "docker"],
  ["cri-containerd-", "containerd"],
  ["crio-", "cri-o"],
  ["libpod-", "podman"],
];

/** Runtimes of a bare `<64 hex>` directory (cgroupfs drivers), by an ancestor's name. */
const PARENT_RUNTIMES: Record<string, string> = {
  docker: "docker",
  libpod_parent: "podman",
  "machine.slice": "podman",
};

/**
 * The unit and container a cgroup path names.
 *
 * @example
 * ```ts
 * describeCgroup("/system.slice/docker-" + "ab".repeat(32) + ".scope");
 * // { unit: "docker-abab....scope", container_id: "abab...", container_runtime: "docker" }
 * ```
 */
export function describeCgroup(path: string): CgroupOwner {
  const parts = path.split("/").filter((p) => p !== "");
  let unit: string | null = null;
  let containerId: string | null = null;
  let runtime: string | null = null;
  let kube = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part.startsWith("kubepods")) kube = true;
    if (UNIT_SUFFIX.test(part)) unit = part;
    const found = containerOf(part, i > 0 ? parts[i - 1] : "", kube);
    if (found) [containerId, runtime] = found;
  }
  return { unit, container_id: containerId, container_runtime: runtime };
}

function containerOf(part: string, parent: string, kube: boolean): [string, string] | null {
  if (part.endsWith(".scope")) {
    const name = part.slice(0, -".scope".length);
    for (const [prefix, runtime] of SCOPE_PREFIXES) {
      if (!name.startsWith(prefix)) continue;
      const id = name.slice(prefix.length);
      if (HEX64.test(id)) return [id, runtime];
    }
    return null;
  }
  if (HEX64.test(part)) {
    return [part, PARENT_RUNTIMES[parent] ?? (kube ? "cri" : parent || "unknown")];
  }
  const libpod = /^libpod-([0-9a-f]{64})$/.exec(part);
  if (libpod) return [libpod[1], "podman"];
  return null;
}

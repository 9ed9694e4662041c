/**
 * Test helpers for cgroups: a test-only tree under the cgroup v2 root
 * (`<root>/ebpf-test-<pid>/...`) whose directories have the names systemd, Docker and the
 * kubelet give theirs, processes started inside them (the child writes its own pid to
 * `cgroup.procs`, then execs), and the removal of all of it.
 *
 * @module
 */

import { cgroup2Root } from "../src/kernel/cgroup.ts";
import { runCommand, TIMEOUT_SCALE } from "./_server.ts";

/** A cgroup made by {@linkcode TestCgroups.make}. */
export interface TestCgroup {
  /** Its directory. */
  dir: string;
  /** Its path relative to the v2 root (what events show as cgroup_path). */
  path: string;
  /** Its id (the directory's inode number). */
  id: number;
}

/** 64 hex digits from a seed, as a container id. */
export function hexId(seed: string): string {
  let out = "";
  let h = 2166136261;
  while (out.length < 64) {
    for (const ch of seed + out.length) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    out += h.toString(16).padStart(8, "0");
  }
  return out.slice(0, 64);
}

let pythonPath: string | undefined;

/** The real Python executable (not a wrapper script), so exec keeps the shell's pid. */
async function realPython(): Promise<string> {
  if (pythonPath) return pythonPath;
  const out = await runCommand("python3", ["-c", "import sys; print(sys.executable)"]);
  if (out.code !== 0) throw new Error(`python3 does not run: ${out.stderr}`);
  return pythonPath = out.stdout.trim();
}

/** A tree of test cgroups under `<v2 root>/ebpf-test-<pid>-<name>`. */
export class TestCgroups {
  readonly root: string;
  readonly base: string;
  /** The base's path relative to the root. */
  readonly basePath: string;
  #made: string[] = [];

  constructor(name: string) {
    const root = cgroup2Root();
    if (root === null) throw new Error("no cgroup v2 hierarchy is mounted");
    this.root = root;
    this.basePath = `/ebpf-test-${Deno.pid}-${name}`;
    this.base = root + this.basePath;
  }

  /** Makes `rel` (and its parents) under the base. */
  make(rel: string): TestCgroup {
    const parts = rel.split("/").filter(Boolean);
    let dir = this.base;
    for (const part of ["", ...parts]) {
      if (part) dir += `/${part}`;
      try {
        Deno.mkdirSync(dir);
        this.#made.push(dir);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
    }
    return { dir, path: dir.slice(this.root.length), id: Deno.statSync(dir).ino! };
  }

  /** Removes one cgroup now (its processes must have exited). */
  remove(cg: TestCgroup): void {
    Deno.removeSync(cg.dir);
    this.#made = this.#made.filter((d) => d !== cg.dir);
  }

  /**
   * Runs `python3 -c script ...args` inside `cg`: the shell moves itself into the cgroup and
   * execs Python, so the pid is Python's from its first instruction. Returns pid and stdout.
   */
  async python(cg: TestCgroup, script: string, args: string[] = []) {
    const out = await runCommand("sh", [
      "-c",
      'echo $$ > "$0/cgroup.procs" && echo "pid $$" && exec "$PYTHON" -S -c "$@"',
      cg.dir,
      script,
      ...args,
    ], { timeoutMs: 30_000, env: { PYTHON: await realPython() } });
    if (out.code !== 0) throw new Error(`python in ${cg.path} failed (${out.code}): ${out.stderr}`);
    const pid = Number(/^pid (\d+)$/m.exec(out.stdout)?.[1]);
    return { pid, stdout: out.stdout };
  }

  /** Removes every cgroup made, deepest first (waiting a little for exiting processes). */
  async cleanup(): Promise<void> {
    for (const dir of [...this.#made].reverse()) {
      for (let i = 0; i < 50; i++) {
        try {
          Deno.removeSync(dir);
          break;
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) break;
          await new Promise((r) => setTimeout(r, 20 * TIMEOUT_SCALE));
        }
      }
    }
    this.#made = [];
  }
}

/** Python: a TCP connect to 127.0.0.1:port (refused when nothing listens); prints the errno. */
export const PY_TCP =
  'import socket,sys; s=socket.socket(); print("errno", s.connect_ex(("127.0.0.1", int(sys.argv[1])))); s.close()';

/** Python: one UDP datagram to 127.0.0.1:port (dropped, NO_SOCKET, when nothing listens). */
export const PY_UDP =
  'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("127.0.0.1", int(sys.argv[1])))';

/** Python: a DNS query (A, `name`) over UDP to 127.0.0.1:port, no answer awaited. */
export const PY_DNS = `import socket,sys,struct
name, port = sys.argv[1], int(sys.argv[2])
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(q, ("127.0.0.1", port))`;

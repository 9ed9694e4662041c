/**
 * Process helpers for the benchmark harness: CPU time and memory of a pid from /proc, child
 * processes with line-oriented stdout, free ports, small statistics.
 *
 * @module
 */

const CLK_TCK = 100;

/** CPU time of a process: on-CPU ns summed over its live threads, and utime+stime in ns. */
export interface CpuSample {
  /** sum of /proc/<pid>/task/<tid>/schedstat field 1 (ns on CPU, exact) */
  schedNs: number;
  /** /proc/<pid>/stat utime + stime (clock ticks, 10 ms resolution), as ns */
  statNs: number;
}

/** Reads the CPU time a process has used so far. */
export function cpuSample(pid: number): CpuSample {
  let schedNs = 0;
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/schedstat`);
      schedNs += Number(text.split(" ")[0]);
    } catch {
      // the thread exited meanwhile
    }
  }
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, stime 15
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { schedNs, statNs: ticks * (1e9 / CLK_TCK) };
}

/** Difference of two CPU samples. */
export function cpuDelta(a: CpuSample, b: CpuSample): CpuSample {
  return { schedNs: b.schedNs - a.schedNs, statNs: b.statNs - a.statNs };
}

/** VmRSS and VmHWM of a process, in bytes. */
export function memory(pid: number): { rss: number; hwm: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The value at quantile q of values (nearest rank). */
export function percentile(values: number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}

/** A child process whose stdout is read line by line. */
export class LineChild {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #done = false;

  constructor(
    cmd: string,
    args: string[],
    options: { cwd?: string; env?: Record<string, string> } = {},
  ) {
    this.child = new Deno.Command(cmd, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.pid = this.child.pid;
    this.#pump();
  }

  async #pump(): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of this.child.stdout.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          this.#lines.push(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
        this.#wake();
      }
    } finally {
      if (rest) this.#lines.push(rest);
      this.#done = true;
      this.#wake();
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** The next line for which `accept` holds (earlier lines are dropped); throws on EOF or timeout. */
  async next(accept: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      while (this.#lines.length) {
        const line = this.#lines.shift()!;
        if (accept(line)) return line;
      }
      if (this.#done) throw new Error(`process ${this.pid} ended before the expected output`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`process ${this.pid}: no expected output in ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }
}

/** Sends `signal` to a process we started and waits for it to end (SIGKILL after timeoutMs). */
export async function stopChild(
  child: Deno.ChildProcess,
  signal: Deno.Signal = "SIGTERM",
  timeoutMs = 8000,
): Promise<Deno.CommandStatus> {
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  const status = await Promise.race([child.status, killed]);
  clearTimeout(timer);
  if (status) return status;
  try {
    child.kill("SIGKILL");
  } catch {
    // already gone
  }
  return await child.status;
}

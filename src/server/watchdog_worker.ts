/**
 * The shutdown watchdog's thread: on SIGTERM or SIGINT it waits for the deadline it was given,
 * then ends the process with status 0 through libc's `_exit`, whatever the main thread is doing
 * (a signal listener on the main thread runs only when its JavaScript yields). BPF links and
 * maps are file descriptors: the kernel detaches and frees them as the process ends.
 *
 * @module
 */

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<{ deadlineMs: number }>) => void) | null;
  postMessage(message: string): void;
};

scope.onmessage = (e) => {
  const deadlineMs = e.data.deadlineMs;
  const libc = Deno.dlopen(
    "libc.so.6",
    {
      _exit: { parameters: ["i32"], result: "void" },
    } as const,
  );
  let armed = false;
  const arm = () => {
    if (armed) return;
    armed = true;
    setTimeout(() => libc.symbols._exit(0), deadlineMs);
  };
  Deno.addSignalListener("SIGTERM", arm);
  Deno.addSignalListener("SIGINT", arm);
  scope.postMessage("ready");
};

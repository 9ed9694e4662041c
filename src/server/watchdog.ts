/**
 * SIGTERM (or SIGINT) ends the process within a deadline whatever is running: a worker thread
 * hears the signal too and, if the main thread has not exited by then, ends the process itself
 * (see watchdog_worker.ts). The main thread's own handler detaches the programs and closes the
 * server first when it can.
 *
 * @module
 */

/** Starts the watchdog thread and resolves once it listens for the signals. */
export async function startShutdownWatchdog(deadlineMs: number): Promise<Worker> {
  const worker = new Worker(new URL("./watchdog_worker.ts", import.meta.url), { type: "module" });
  await new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`the shutdown watchdog did not start: ${e.message}`));
    };
    worker.postMessage({ deadlineMs });
  });
  return worker;
}

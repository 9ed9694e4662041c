/**
 * When a program ran and when it did not, so that a summary window reaching over a time it was
 * stopped (or before it first ran) says it is incomplete. Bounded like the counter log: the
 * oldest periods go first, and a window that reaches back past a forgotten one is incomplete.
 *
 * @module
 */

/** A time a program was not running, in Unix ms; `until` is null while it still is not. */
export interface StoppedPeriod {
  from: number;
  until: number | null;
}

/** How many stopped periods a program keeps. */
export const MAX_STOPPED_PERIODS = 64;

/** The running and stopped periods of one program. */
export class RunLog {
  #firstStart: number | null = null;
  #running = false;
  #periods: StoppedPeriod[] = [];
  #forgottenUntil = -Infinity;
  #stoppedAt: number | null = null;
  readonly #capacity: number;

  constructor(capacity = MAX_STOPPED_PERIODS) {
    this.#capacity = capacity;
  }

  /** The program runs from `at` (Unix ms): ends the stopped period, if one is open. */
  started(at: number): void {
    if (this.#running) return;
    this.#running = true;
    this.#firstStart ??= at;
    const open = this.#periods.at(-1);
    if (open && open.until === null) open.until = at;
  }

  /** The program stopped running at `at` (stopped, or failed while it ran). */
  stopped(at: number): void {
    if (!this.#running) return;
    this.#running = false;
    this.#stoppedAt = at;
    this.#periods.push({ from: at, until: null });
    if (this.#periods.length > this.#capacity) {
      this.#forgottenUntil = this.#periods.shift()!.until!;
    }
  }

  /** When it last stopped running, or null when it never did. */
  get stoppedAt(): number | null {
    return this.#stoppedAt;
  }

  /** The stopped periods kept, oldest first (copies). */
  get periods(): StoppedPeriod[] {
    return this.#periods.map((p) => ({ ...p }));
  }

  /**
   * Whether the program ran through the whole window `(since, until]`: it had started by
   * `since` and no stopped period (kept or forgotten) overlaps the window.
   */
  ranThrough(since: number, until: number): boolean {
    if (this.#firstStart === null || since < this.#firstStart) return false;
    if (since < this.#forgottenUntil) return false;
    return this.#periods.every((p) => p.from >= until || (p.until !== null && p.until <= since));
  }
}

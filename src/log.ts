/**
 * A small leveled logger writing one line per message to stderr: the stand-in for `@std/log`,
 * which cannot be installed here (JSR is unreachable).
 *
 * @module
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const encoder = new TextEncoder();
let threshold = RANK.info;

/** Sets the lowest level that is written. */
export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

/** Whether messages of `level` are written; check it before building costly messages. */
export function isLogEnabled(level: LogLevel): boolean {
  return RANK[level] >= threshold;
}

function write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
  if (RANK[level] < threshold) return;
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      line += ` ${key}=${typeof value === "string" ? JSON.stringify(value) : String(value)}`;
    }
  }
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** The logger every module uses: `log.info("attached", { program: "connection" })`. */
export const log = {
  debug: (message: string, fields?: Record<string, unknown>) => write("debug", message, fields),
  info: (message: string, fields?: Record<string, unknown>) => write("info", message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write("warn", message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write("error", message, fields),
};

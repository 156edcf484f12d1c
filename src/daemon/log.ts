/**
 * Log lines `[domain] level: message`: on stderr in the foreground; once the
 * daemon runs in the background, to syslog (or to a file where syslog is
 * unreachable). Debug lines only while debug logging is on (`-d`, `.debug`);
 * then every line also names its source location, as the original does.
 *
 * The process has one log, {@linkcode logger}; any layer may use it:
 *
 * @example
 * ```ts
 * import { logger } from "../daemon/log.ts";
 * logger.debug("fuse", () => `lookup ${parent}/${name}`); // the closure runs only when on
 * if (logger.debugOn) logger.debug("fuse", `read ${ino} ${size}@${off}`); // hot paths
 * logger.write("database", "err", "commit failed");
 * ```
 * @module
 */
export type Level = "crit" | "err" | "warn" | "notice" | "info" | "debug";

/** syslog priorities (LOG_CRIT...LOG_DEBUG). */
export const PRIORITY: Record<Level, number> = {
  crit: 2,
  err: 3,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** Where lines go instead of stderr: syslog or a log file. */
export type LogSink = (priority: number, line: string) => void;

const encoder = new TextEncoder();

export class Log {
  /** Debug lines are written only while this is on. */
  debugOn = false;
  /** Set once the daemon is in the background; stderr while unset. */
  sink?: LogSink;
  /** Lines written to stderr that the sink gets too once attached (see `holdForSink`). */
  #held?: [number, string][];

  /**
   * For a daemon starting in the background: lines go to stderr and are also
   * kept, until `attach` hands them to the sink chosen at detach time.
   */
  holdForSink(): void {
    this.#held = [];
  }

  /** From now on lines go to `sink` only; lines held so far are written to it first. */
  attach(sink: LogSink): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.sink = sink;
    for (const [priority, line] of held) this.#emit(priority, line);
  }

  /** Writes one line (debug lines only while debug logging is on). */
  write(domain: string, level: Level, msg: string): void {
    if (level === "debug" && !this.debugOn) return;
    let line = `[${domain}] ${level}: ${msg}`;
    if (this.debugOn) line += callerLocation();
    this.#held?.push([PRIORITY[level], line]);
    this.#emit(PRIORITY[level], line);
  }

  #emit(priority: number, line: string): void {
    try {
      if (this.sink) this.sink(priority, line);
      else Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // logging must never take the daemon down
    }
  }

  /**
   * A debug line; returns at once while debug logging is off. Pass a closure
   * to build the message only when it is written.
   */
  debug(domain: string, msg: string | (() => string)): void {
    if (!this.debugOn) return;
    this.write(domain, "debug", typeof msg === "function" ? msg() : msg);
  }

  /** A writer bound to one domain (the shape `Database.open` takes). */
  domain(domain: string): (level: Level, msg: string) => void {
    return (level, msg) => this.write(domain, level, msg);
  }
}

/** The process's log. */
export const logger = new Log();

/** ` (file.ts:line)` of the first caller outside this module (only built when debug is on). */
function callerLocation(): string {
  const stack = new Error().stack?.split("\n") ?? [];
  for (const frame of stack.slice(1)) {
    const m = /([^/\s(]+\.[cm]?[jt]s):(\d+):\d+\)?$/.exec(frame);
    if (m && m[1] !== "log.ts") return ` (${m[1]}:${m[2]})`;
  }
  return "";
}

/**
 * A sink appending `<ISO time> pmxcfs[<pid>]: <line>` to `path` (created
 * 0640 under the daemon's umask), for when syslog is unreachable.
 */
export function fileSink(path: string): LogSink {
  const f = Deno.openSync(path, { append: true, create: true, mode: 0o640 });
  return (_priority, line) => {
    f.writeSync(encoder.encode(`${new Date().toISOString()} pmxcfs[${Deno.pid}]: ${line}\n`));
  };
}

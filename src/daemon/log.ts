/**
 * Log lines `[domain] level: message`: on stderr in the foreground, to syslog
 * once the daemon runs in the background. Debug lines only when switched on.
 */
export type Level = "crit" | "err" | "warn" | "notice" | "info" | "debug";

const PRIORITY: Record<Level, number> = { crit: 2, err: 3, warn: 4, notice: 5, info: 6, debug: 7 };

export class Log {
  debug = false;
  /** Set to send lines to syslog instead of stderr. */
  syslog?: (priority: number, msg: string) => void;

  write(domain: string, level: Level, msg: string): void {
    if (level === "debug" && !this.debug) return;
    const line = `[${domain}] ${level}: ${msg}`;
    try {
      if (this.syslog) this.syslog(PRIORITY[level], line);
      else Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
    } catch {
      // logging must never take the daemon down
    }
  }

  domain(domain: string) {
    return (level: Level, msg: string) => this.write(domain, level, msg);
  }
}

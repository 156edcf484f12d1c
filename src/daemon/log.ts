/** Log lines `[domain] level: message` on stderr; debug lines only when switched on. */
export type Level = "crit" | "err" | "warn" | "notice" | "info" | "debug";

export class Log {
  debug = false;

  write(domain: string, level: Level, msg: string): void {
    if (level === "debug" && !this.debug) return;
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(`[${domain}] ${level}: ${msg}\n`));
    } catch {
      // stderr may be gone (detached daemon); logging must never take the daemon down.
    }
  }

  domain(domain: string) {
    return (level: Level, msg: string) => this.write(domain, level, msg);
  }
}

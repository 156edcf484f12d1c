/**
 * System-test helpers: run a FUSE server (any `deno run` script, e.g. the daemon) inside a
 * private mount namespace, wait until it has mounted, run commands against the mount with
 * `nsenter`, and tear everything down.
 *
 * Nothing is ever mounted in the host mount namespace: the server is started as
 * `setpriv --pdeathsig KILL unshare --mount --propagation private deno run ...`, so its mounts
 * live in a namespace that disappears with the process, and the process gets SIGKILL if the
 * test process dies (even by SIGKILL). Server scripts should also call
 * {@linkcode stopOnSignalOrStdinEof} so a graceful stop and "parent gone" both end them.
 *
 * @example
 * ```ts
 * const reason = systemTestSkipReason();
 * Deno.test({ name: "mounts", ignore: reason !== undefined }, async () => {
 *   await using srv = await startInMountNamespace({
 *     script: new URL("./fixtures/toy_fs_server.ts", import.meta.url),
 *     args: ["{mountpoint}"],
 *   });
 *   const r = await srv.sh(`cat ${srv.mountpoint}/hello.txt`);
 *   // r.code === 0, r.stdout === "hello world\n"
 *   const exit = await srv.stop(); // SIGTERM, then SIGKILL after 5 s; removes the temp dir
 * });
 * ```
 * @module
 */
import { DENO_RUN_FLAGS } from "../../src/daemon/deno_flags.ts";

/** Why system tests cannot run here, or undefined when they can. Prints nothing. */
export function systemTestSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return "system tests need Linux";
  if (Deno.uid() !== 0) return "system tests need root";
  try {
    Deno.statSync("/dev/fuse");
  } catch {
    return "/dev/fuse is missing";
  }
  for (const tool of ["/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/setpriv"]) {
    try {
      Deno.statSync(tool);
    } catch {
      return `${tool} is missing (util-linux)`;
    }
  }
  return undefined;
}

/**
 * argv prefix that runs a command in a private mount namespace (plus `extra` unshare
 * options) and kills it when its parent dies, so no mount can outlive a test or bench.
 */
export function privateMountNs(extra: string[] = []): string[] {
  return [
    "/usr/bin/setpriv",
    "--pdeathsig",
    "KILL",
    "/usr/bin/unshare",
    "--mount",
    ...extra,
    "--propagation",
    "private",
    "--",
  ];
}

/** Result of a command run inside the namespace. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode startInMountNamespace}. */
export interface NsServerOptions {
  /** Script run with `deno run --allow-all` (or give `command`). */
  script?: string | URL;
  /** A whole command line instead of `deno run script` (e.g. a compiled binary). */
  command?: string[];
  /**
   * Script arguments; `{mountpoint}` and `{dir}` are replaced by the mountpoint and the
   * per-run temp dir (the mountpoint is `{dir}/mnt`, created empty).
   */
  args?: string[];
  /** Extra `deno run` flags (default: `DENO_RUN_FLAGS` of src/daemon/deno_flags.ts). */
  denoFlags?: string[];
  /** Environment additions for the server. */
  env?: Record<string, string>;
  /**
   * Ready when the mountpoint shows in the server's /proc/PID/mountinfo (default), or when
   * the server printed a stdout line containing this string.
   */
  readyLine?: string;
  /** Wait at most this long for readiness (default 15000 ms). */
  readyTimeoutMs?: number;
  /** Keep the temp dir after stop() (debugging). */
  keepDir?: boolean;
}

/** A server running in its own mount namespace. */
export interface NsServer extends AsyncDisposable {
  /** PID of the server process (its mount namespace is the one commands enter). */
  readonly pid: number;
  /** Per-run temp dir (host-visible, no mounts in the host namespace). */
  readonly dir: string;
  /** `{dir}/mnt`, where the server mounts (only inside its namespace). */
  readonly mountpoint: string;
  /** Server stdout/stderr collected so far. */
  stdout(): string;
  stderr(): string;
  /** True once the server process has exited. */
  exited(): boolean;
  /** Run argv in the server's mount namespace (`nsenter -t PID -m`). */
  exec(argv: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Run a `sh -c` script in the server's mount namespace. */
  sh(script: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Send a signal to the server. */
  kill(signal?: Deno.Signal): void;
  /** Wait for the server to exit by itself (e.g. after an external umount). */
  wait(timeoutMs?: number): Promise<Deno.CommandStatus>;
  /** SIGTERM, wait up to `graceMs` (default 5000), then SIGKILL; remove the temp dir. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

const dec = new TextDecoder();

/** Quote a string for `sh`. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Start `opts.script` in a private mount namespace and wait until it has mounted.
 * On any failure everything started is cleaned up before the error is thrown.
 */
export async function startInMountNamespace(opts: NsServerOptions): Promise<NsServer> {
  const dir = await Deno.makeTempDir({ prefix: "pmxcfs-systest-" });
  const mountpoint = `${dir}/mnt`;
  await Deno.mkdir(mountpoint);
  const script = opts.script instanceof URL ? opts.script.pathname : opts.script;
  const program = opts.command ?? [
    Deno.execPath(),
    "run",
    ...(opts.denoFlags ?? DENO_RUN_FLAGS),
    script!,
  ];
  const args = (opts.args ?? []).map((a) =>
    a.replaceAll("{mountpoint}", mountpoint).replaceAll("{dir}", dir)
  );
  const [setpriv, ...prefix] = privateMountNs();
  const cmd = new Deno.Command(setpriv, {
    args: [
      ...prefix,
      ...program.map((a) => a.replaceAll("{mountpoint}", mountpoint).replaceAll("{dir}", dir)),
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  });
  const child = cmd.spawn();
  let out = "";
  let err = "";
  let done = false;
  const drain = async (s: ReadableStream<Uint8Array>, f: (t: string) => void) => {
    for await (const chunk of s) f(dec.decode(chunk, { stream: true }));
  };
  const readers = Promise.all([
    drain(child.stdout, (t) => (out += t)),
    drain(child.stderr, (t) => (err += t)),
  ]);
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  const stdin = child.stdin.getWriter();
  let stopped: Promise<Deno.CommandStatus> | undefined;

  const stop = (graceMs = 5000): Promise<Deno.CommandStatus> => {
    stopped ??= (async () => {
      if (!done) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        const t = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
        }, graceMs);
        await status;
        clearTimeout(t);
      }
      const s = await status;
      try {
        await stdin.close();
      } catch { /* closed */ }
      await readers;
      if (!opts.keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
      return s;
    })();
    return stopped;
  };

  const exec = async (
    argv: string[],
    o: { stdin?: string; timeoutMs?: number } = {},
  ): Promise<ExecResult> => {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), o.timeoutMs ?? 30000);
    try {
      const c = new Deno.Command("/usr/bin/nsenter", {
        args: ["-t", String(child.pid), "-m", "--", ...argv],
        stdin: o.stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        signal: ac.signal,
      }).spawn();
      if (o.stdin !== undefined) {
        const w = c.stdin.getWriter();
        await w.write(new TextEncoder().encode(o.stdin));
        await w.close();
      }
      const r = await c.output();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    } finally {
      clearTimeout(t);
    }
  };

  const server: NsServer = {
    pid: child.pid,
    dir,
    mountpoint,
    stdout: () => out,
    stderr: () => err,
    exited: () => done,
    exec,
    sh: (s, o) => exec(["/bin/sh", "-c", s], o),
    kill: (sig: Deno.Signal = "SIGTERM") => {
      if (!done) child.kill(sig);
    },
    wait: async (timeoutMs = 10000) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, rej) => {
        t = setTimeout(
          () => rej(new Error(`server did not exit within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([status, timeout]);
      } finally {
        clearTimeout(t);
      }
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };

  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 15000);
    for (;;) {
      if (done) throw new Error("server exited before it was ready");
      if (opts.readyLine !== undefined) {
        if (out.includes(opts.readyLine)) break;
      } else if (await isMounted(child.pid, mountpoint)) break;
      if (Date.now() > deadline) throw new Error("server not ready in time");
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (e) {
    await stop(1000);
    throw new Error(
      `${(e as Error).message}\n--- server stdout ---\n${out}\n--- server stderr ---\n${err}`,
    );
  }
  return server;
}

/** True if `mountpoint` is a mount in the mount namespace of process `pid`. */
export async function isMounted(pid: number, mountpoint: string): Promise<boolean> {
  try {
    const info = await Deno.readTextFile(`/proc/${pid}/mountinfo`);
    // mountinfo field 5 is the mount point (octal escapes for space, tab, newline, backslash).
    const esc = mountpoint.replace(
      /[ \t\n\\]/g,
      (c) => "\\" + c.charCodeAt(0).toString(8).padStart(3, "0"),
    );
    return info.split("\n").some((l) => l.split(" ")[4] === esc);
  } catch {
    return false;
  }
}

/**
 * Server side: call `stop` on SIGTERM/SIGINT or when stdin reaches EOF (the test that started
 * us is gone). Use in server scripts started by {@linkcode startInMountNamespace}; exit the
 * process explicitly (`Deno.exit`) after the server has stopped, since the stdin read keeps
 * the event loop alive.
 */
export function stopOnSignalOrStdinEof(stop: () => void): void {
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  (async () => {
    const buf = new Uint8Array(256);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* ignore input */ }
    } catch { /* closed */ }
    stop();
  })();
}

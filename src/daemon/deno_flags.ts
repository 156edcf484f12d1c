/**
 * The `deno run` flags the program needs, defined once. Everything in TypeScript that starts
 * the daemon (or a script that mounts FUSE or talks to corosync) under `deno run` takes them
 * from here. deno.json's tasks and install.sh cannot import TypeScript: they spell the same
 * flags and point here in a comment; keep them in step.
 *
 * @example
 * ```ts
 * import { DENO_RUN_FLAGS } from "./deno_flags.ts";
 * new Deno.Command(Deno.execPath(), { args: ["run", ...DENO_RUN_FLAGS, "main.ts", "-f"] });
 * ```
 * @module
 */

/**
 * A 2 MiB V8 stack (the default is about 1 MiB). libcpg, libquorum and libcmap reserve about
 * 1 MiB of C stack in `cpg_dispatch`/`quorum_dispatch`/`cmap_dispatch` before they call back
 * into JS on the same thread; with the default V8 limit the callback then throws "Maximum call
 * stack size exceeded" (measured, see the shared platform notes). `deno compile` takes the
 * same flag and bakes it into the binary.
 */
export const V8_STACK_SIZE_FLAG = "--v8-flags=--stack-size=2048";

/** All permissions (FFI, files, subprocesses, signals) and {@linkcode V8_STACK_SIZE_FLAG}. */
export const DENO_RUN_FLAGS: readonly string[] = ["--allow-all", V8_STACK_SIZE_FLAG];

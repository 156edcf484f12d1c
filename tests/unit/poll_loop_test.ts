/** The daemon's poll loop: descriptors (a pipe), timers, re-arm, cancel, stop. */
import { O_CLOEXEC, O_NONBLOCK, POLLHUP, POLLIN } from "../../ffi/libc.ts";
import { PollLoop } from "../../src/daemon/poll_loop.ts";
import { libc } from "../../src/util/libc.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

/** A non-blocking pipe; `using` closes what is still open. */
function pipe() {
  const fds = new Int32Array(2);
  assertEquals(libc().pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  const p = {
    r: fds[0],
    w: fds[1],
    write: (s = "x") => libc().write(p.w, new TextEncoder().encode(s), BigInt(s.length)),
    read: () => Number(libc().read(p.r, new Uint8Array(64), 64n)),
    closeWriter: () => {
      if (p.w >= 0) libc().close(p.w);
      p.w = -1;
    },
    [Symbol.dispose]: () => {
      p.closeWriter();
      libc().close(p.r);
    },
  };
  return p;
}

Deno.test("poll loop: a readable descriptor gets onReady(POLLIN) on the JS thread", async () => {
  using p = pipe();
  const loop = new PollLoop();
  const got: string[] = [];
  loop.add(p.r, POLLIN, (revents) => {
    got.push(`ready ${revents & POLLIN ? "in" : "?"} ${p.read()}`);
    if (got.length === 2) loop.stop();
  });
  setTimeout(() => p.write("ab"), 20);
  setTimeout(() => p.write("c"), 60);
  await loop.run();
  assertEquals(got, ["ready in 2", "ready in 1"]);
});

Deno.test("poll loop: a hang-up is reported without being asked for", async () => {
  using p = pipe();
  const loop = new PollLoop();
  let revents = 0;
  loop.add(p.r, POLLIN, (r) => {
    revents = r;
    loop.stop();
  });
  setTimeout(() => p.closeWriter(), 10);
  await loop.run();
  assert((revents & POLLHUP) !== 0, `revents ${revents}`);
});

Deno.test("poll loop: a descriptor added while polling is watched at once", async () => {
  using p = pipe();
  const loop = new PollLoop();
  const far = loop.timer(10_000, () => {});
  const t0 = performance.now();
  setTimeout(() => {
    loop.add(p.r, POLLIN, () => {
      p.read();
      loop.stop();
    });
    p.write();
  }, 20);
  await loop.run();
  far.cancel();
  assert(performance.now() - t0 < 2000, "the added descriptor waited for the timer");
});

Deno.test("poll loop: a removed descriptor is not reported; remove() resolves", async () => {
  using p = pipe();
  const loop = new PollLoop();
  let calls = 0;
  loop.add(p.r, POLLIN, () => calls++);
  let removed = false;
  setTimeout(async () => {
    await loop.remove(p.r);
    removed = true;
    p.write();
    loop.timer(50, () => loop.stop());
  }, 20);
  await loop.run();
  assert(removed);
  assertEquals(calls, 0);
  // Watched again after removal: a new registration is fine.
  loop.add(p.r, POLLIN, () => {
    calls++;
    loop.stop();
  });
  await loop.run();
  assertEquals(calls, 1);
  await loop.remove(p.r);
});

Deno.test("poll loop: adding a watched descriptor twice throws", () => {
  using p = pipe();
  const loop = new PollLoop();
  loop.add(p.r, POLLIN, () => {});
  assertThrows(() => loop.add(p.r, POLLIN, () => {}), /watched already/);
});

Deno.test("poll loop: timers fire in deadline order, ties in arming order", async () => {
  const loop = new PollLoop();
  const order: string[] = [];
  loop.timer(40, () => order.push("40"));
  loop.timer(10, () => order.push("10a"));
  loop.timer(25, () => order.push("25"));
  loop.timer(10, () => order.push("10b"));
  loop.timer(0, () => order.push("0"));
  loop.timer(60, () => loop.stop());
  await loop.run();
  assertEquals(order, ["0", "10a", "10b", "25", "40"]);
});

Deno.test("poll loop: a timer fires once, not before its deadline", async () => {
  const loop = new PollLoop();
  const t0 = performance.now();
  let at = 0;
  let n = 0;
  const t = loop.timer(30, () => {
    at = performance.now() - t0;
    n++;
  });
  loop.timer(100, () => loop.stop());
  await loop.run();
  assertEquals(n, 1);
  assert(at >= 29, `fired after ${at} ms`);
  assert(!t.armed);
});

Deno.test("poll loop: re-arming pushes the deadline back (the quiet-second pattern)", async () => {
  const loop = new PollLoop();
  const t0 = performance.now();
  const fired: number[] = [];
  const quiet = loop.timer(50, () => fired.push(performance.now() - t0));
  // "writes" at 0..80 ms re-arm it each time: it fires 50 ms after the last one.
  let writes = 0;
  const write = loop.timer(10, () => {
    quiet.rearm();
    if (++writes < 8) write.rearm();
  });
  loop.timer(250, () => loop.stop());
  await loop.run();
  assertEquals(fired.length, 1);
  assert(fired[0] >= 80 + 50 - 1, `quiet timer fired at ${fired[0]} ms`);
  // Many re-arms are cheap: no queue growth, a single firing.
  let n = 0;
  const busy = loop.timer(20, () => n++);
  const t1 = performance.now();
  for (let i = 0; i < 200_000; i++) busy.rearm();
  const ms = performance.now() - t1;
  assert(ms < 500, `200k re-arms took ${ms} ms`);
  loop.timer(60, () => loop.stop());
  await loop.run();
  assertEquals(n, 1);
});

Deno.test("poll loop: re-arming earlier while polling takes effect at once", async () => {
  const loop = new PollLoop();
  const t0 = performance.now();
  const t = loop.timer(10_000, () => loop.stop());
  setTimeout(() => t.rearm(5), 20);
  await loop.run();
  assert(performance.now() - t0 < 2000, "the earlier deadline waited for the old one");
});

Deno.test("poll loop: a timer armed while polling with no timers wakes the loop", async () => {
  const loop = new PollLoop();
  const t0 = performance.now();
  setTimeout(() => loop.timer(5, () => loop.stop()), 20);
  await loop.run();
  assert(performance.now() - t0 < 2000);
});

Deno.test("poll loop: cancel, and re-arm after cancel", async () => {
  const loop = new PollLoop();
  const fired: string[] = [];
  const a = loop.timer(10, () => fired.push("a"));
  const b = loop.timer(20, () => fired.push("b"));
  loop.timer(5, () => b.cancel()); // cancelled by an earlier timer
  a.cancel();
  assert(!a.armed);
  loop.timer(40, () => a.rearm(10)); // comes back 10 ms later
  loop.timer(100, () => loop.stop());
  await loop.run();
  assertEquals(fired, ["a"]);
  assert(!b.armed);
});

Deno.test("poll loop: a timer cancelled by an earlier timer of the same round does not fire", async () => {
  const loop = new PollLoop();
  const fired: string[] = [];
  const timers: { cancel(): void }[] = [];
  loop.timer(10, () => {
    fired.push("first");
    timers[0].cancel();
  });
  timers.push(loop.timer(10, () => fired.push("second")));
  loop.timer(40, () => loop.stop());
  await loop.run();
  assertEquals(fired, ["first"]);
});

Deno.test("poll loop: a timer armed by a timer runs in a later round", async () => {
  const loop = new PollLoop();
  const fired: string[] = [];
  loop.timer(5, () => {
    fired.push("outer");
    loop.timer(0, () => {
      fired.push("inner");
      loop.stop();
    });
    fired.push("outer done");
  });
  await loop.run();
  assertEquals(fired, ["outer", "outer done", "inner"]);
});

Deno.test("poll loop: stop() while polling ends run() promptly", async () => {
  const loop = new PollLoop();
  const t0 = performance.now();
  setTimeout(() => loop.stop(), 20);
  await loop.run(); // no descriptors, no timers: an infinite poll without the wake pipe
  assert(performance.now() - t0 < 2000);
  // stop() before run(): run() returns at once; the loop can run again afterwards.
  loop.stop();
  await loop.run();
  let n = 0;
  loop.timer(1, () => {
    n++;
    loop.stop();
  });
  await loop.run();
  assertEquals(n, 1);
});

Deno.test("poll loop: a callback that throws ends run() with its error", async () => {
  const loop = new PollLoop();
  loop.timer(1, () => {
    throw new Error("boom");
  });
  let msg = "";
  await loop.run().catch((e) => (msg = (e as Error).message));
  assertEquals(msg, "boom");
});

Deno.test("poll loop: runUntil() stops when the work settles and returns its value", async () => {
  const loop = new PollLoop();
  const work = new Promise<number>((resolve) => loop.timer(10, () => resolve(42)));
  assertEquals(await loop.runUntil(work), 42);
  let msg = "";
  const failing = new Promise<number>((_, reject) => loop.timer(5, () => reject(new Error("no"))));
  await loop.runUntil(failing).catch((e) => (msg = (e as Error).message));
  assertEquals(msg, "no");
});

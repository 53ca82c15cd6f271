/**
 * Runs one function the way the edge runtime does: the function calls
 * `Deno.serve(handler)` with no address, and the runtime decides where it
 * listens. Here that is 127.0.0.1 on the port the gateway assigned.
 *
 * Usage: deno run worker.ts <entrypoint path> <port>
 *
 * With WORKER_HEAP_REPORT=<file> (set by the gateway when it is started
 * with GATEWAY_HEAP_REPORTS, for the benchmark's soak) and V8's `gc()`
 * exposed (`--v8-flags=--expose-gc`), each SIGUSR2 forces a full garbage
 * collection and appends one JSON line to the file: `{ at, rssMiB,
 * heapUsedMiB, heapTotalMiB, externalMiB }`, the live heap after GC being
 * what tells whether the function retains memory. Without it, nothing of the
 * sort happens.
 *
 * @module
 */
import { isLoopbackHost } from "./local_host.ts";

const [entrypoint, port] = Deno.args;
if (!entrypoint || !port) throw new Error("usage: worker.ts <entrypoint> <port>");

const serve = Deno.serve.bind(Deno);
const listenOn = { hostname: "127.0.0.1", port: Number(port), onListen: () => {} };

/** The function's handler, for requests addressed to this machine only (see local_host.ts). */
function loopbackOnly(handler: Deno.ServeHandler): Deno.ServeHandler {
  return (request, info) => {
    const host = request.headers.get("host");
    if (isLoopbackHost(host)) return handler(request, info);
    return Response.json({
      code: 403,
      message: `the Host ${JSON.stringify(host)} is not this machine's`,
    }, {
      status: 403,
    });
  };
}

// deno-lint-ignore no-explicit-any
(Deno as any).serve = (first: unknown, second?: unknown) => {
  if (typeof first === "function") {
    return serve(listenOn, loopbackOnly(first as Deno.ServeHandler));
  }
  const options = (first ?? {}) as Record<string, unknown>;
  const handler = loopbackOnly((second ?? options.handler) as Deno.ServeHandler);
  return serve(
    { ...options, ...listenOn, handler } as Deno.ServeTcpOptions & {
      handler: Deno.ServeHandler;
    },
  );
};

await import(new URL(`file://${entrypoint}`).href);

const heapReport = Deno.env.get("WORKER_HEAP_REPORT");
const gc = (globalThis as { gc?: () => void }).gc;
if (heapReport && gc) {
  const mib = (bytes: number) => bytes / 1024 / 1024;
  Deno.addSignalListener("SIGUSR2", () => {
    gc();
    const memory = Deno.memoryUsage();
    const line = JSON.stringify({
      at: Date.now(),
      rssMiB: mib(memory.rss),
      heapUsedMiB: mib(memory.heapUsed),
      heapTotalMiB: mib(memory.heapTotal),
      externalMiB: mib(memory.external),
    });
    Deno.writeTextFileSync(heapReport, line + "\n", { append: true });
  });
}

// The gateway holds our stdin open; end of input means it is gone.
(async () => {
  for await (const _ of Deno.stdin.readable) { /* the gateway never writes */ }
  Deno.exit(0);
})();

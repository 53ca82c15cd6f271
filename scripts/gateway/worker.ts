/**
 * Runs one function the way the edge runtime does: the function calls
 * `Deno.serve(handler)` with no address, and the runtime decides where it
 * listens. Here that is 127.0.0.1 on the port the gateway assigned.
 *
 * Usage: deno run worker.ts <entrypoint path> <port>
 *
 * @module
 */
const [entrypoint, port] = Deno.args;
if (!entrypoint || !port) throw new Error("usage: worker.ts <entrypoint> <port>");

const serve = Deno.serve.bind(Deno);
const listenOn = { hostname: "127.0.0.1", port: Number(port), onListen: () => {} };

// deno-lint-ignore no-explicit-any
(Deno as any).serve = (first: unknown, second?: unknown) => {
  if (typeof first === "function") {
    return serve(listenOn, first as Deno.ServeHandler);
  }
  const options = (first ?? {}) as Record<string, unknown>;
  const handler = (second ?? options.handler) as Deno.ServeHandler;
  return serve(
    { ...options, ...listenOn, handler } as Deno.ServeTcpOptions & {
      handler: Deno.ServeHandler;
    },
  );
};

await import(new URL(`file://${entrypoint}`).href);

// The gateway holds our stdin open; end of input means it is gone.
(async () => {
  for await (const _ of Deno.stdin.readable) { /* the gateway never writes */ }
  Deno.exit(0);
})();

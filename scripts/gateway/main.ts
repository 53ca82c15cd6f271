/**
 * The local functions gateway: what `supabase functions serve` gives, without
 * Docker. It serves every function folder under `supabase/functions/` at
 * `http://127.0.0.1:54321/functions/v1/<name>`, each in its own Deno process
 * with the environment the edge runtime injects, and verifies the
 * `Authorization: Bearer` JWT first when `[functions.<name>] verify_jwt` is
 * true (never for `OPTIONS`, so CORS preflights reach the function).
 *
 * Environment: SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY,
 * SUPABASE_DB_URL and SUPABASE_JWT_SECRET (from `scripts/stack env`), and
 * SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY when set, handed to
 * functions as the platform hands them: SUPABASE_PUBLISHABLE_KEYS and
 * SUPABASE_SECRET_KEYS, JSON objects of named keys;
 * FUNCTION_INSTANCES (default 1) starts that many processes per function and
 * spreads requests across them, as the platform does under load;
 * GATEWAY_PORT (default 54321) moves the gateway, for a second stack;
 * GATEWAY_HEAP_REPORTS=<dir> (the benchmark's soak only) starts function
 * processes with V8's `gc()` exposed and WORKER_HEAP_REPORT=<dir>/<port>.jsonl,
 * so that a SIGUSR2 makes one collect its garbage and report its live heap
 * there (see worker.ts).
 *
 * It also serves the analysts' dashboard at `/dashboard` (scripts/dashboard/).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { corsHeaders } from "../../supabase/functions/_shared/cors.ts";
import { verifyGatewayJwt } from "./jwt.ts";
import { isLoopbackHost } from "./local_host.ts";

if (Deno.args.length > 0) {
  const help = Deno.args.length === 1 && ["-h", "--help"].includes(Deno.args[0]);
  (help ? console.log : console.error)(
    "Usage: deno run --allow-all scripts/gateway/main.ts\n\n" +
      "The local functions gateway; scripts/stack up starts it with the environment it\n" +
      "needs (see scripts/stack env). It takes no arguments.",
  );
  Deno.exit(help ? 0 : 2);
}

const root = new URL("../../", import.meta.url);
const functionsDir = new URL("supabase/functions/", root);
const apiPort = Number(Deno.env.get("GATEWAY_PORT") ?? "54321");
const instancesPerFunction = Math.max(1, Number(Deno.env.get("FUNCTION_INSTANCES") ?? "1"));
const heapReports = Deno.env.get("GATEWAY_HEAP_REPORTS");

interface Instance {
  port: number;
  child: Deno.ChildProcess | null;
}

interface ServedFunction {
  name: string;
  verifyJwt: boolean;
  entrypoint: URL;
  instances: Instance[];
  next: number;
}

function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`the gateway needs ${name} (see scripts/stack env)`);
  return value;
}

const runtimeEnv: Record<string, string> = {
  SUPABASE_URL: required("SUPABASE_URL"),
  SUPABASE_ANON_KEY: required("SUPABASE_ANON_KEY"),
  SUPABASE_SERVICE_ROLE_KEY: required("SUPABASE_SERVICE_ROLE_KEY"),
  SUPABASE_DB_URL: required("SUPABASE_DB_URL"),
  SUPABASE_JWT_SECRET: required("SUPABASE_JWT_SECRET"),
  ...namedKeys("SUPABASE_PUBLISHABLE_KEYS", Deno.env.get("SUPABASE_PUBLISHABLE_KEY")),
  ...namedKeys("SUPABASE_SECRET_KEYS", Deno.env.get("SUPABASE_SECRET_KEY")),
};

/** `{ [name]: '{"default":"<key>"}' }` for a key that is set, nothing otherwise. */
function namedKeys(name: string, key: string | undefined): Record<string, string> {
  return key ? { [name]: JSON.stringify({ default: key }) } : {};
}
const jwtKeys = { secret: new TextEncoder().encode(runtimeEnv.SUPABASE_JWT_SECRET) };

async function discoverFunctions(): Promise<ServedFunction[]> {
  const config = parseToml(await Deno.readTextFile(new URL("supabase/config.toml", root))) as {
    functions?: Record<string, { verify_jwt?: boolean; entrypoint?: string }>;
  };
  const served: ServedFunction[] = [];
  // Function processes listen just above the gateway's own port.
  let port = apiPort + 100;
  for await (const entry of Deno.readDir(functionsDir)) {
    if (!entry.isDirectory || entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
    const settings = config.functions?.[entry.name] ?? {};
    const entrypoint = new URL(`${entry.name}/index.ts`, functionsDir);
    try {
      await Deno.stat(entrypoint);
    } catch {
      continue;
    }
    const instances = Array.from({ length: instancesPerFunction }, () => ({
      port: port++,
      child: null,
    }));
    served.push({
      name: entry.name,
      verifyJwt: settings.verify_jwt ?? true,
      entrypoint,
      instances,
      next: 0,
    });
  }
  return served;
}

let stopping = false;

/** Starts one function process, and starts it again whenever it exits. */
function supervise(fn: ServedFunction, instance: Instance): void {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      ...(heapReports ? ["--v8-flags=--expose-gc", `--allow-write=${heapReports}`] : []),
      "--quiet",
      fileURLToPath(new URL("worker.ts", import.meta.url)),
      fileURLToPath(fn.entrypoint),
      String(instance.port),
    ],
    env: {
      ...runtimeEnv,
      SB_EXECUTION_ID: crypto.randomUUID(),
      ...(heapReports ? { WORKER_HEAP_REPORT: `${heapReports}/${instance.port}.jsonl` } : {}),
    },
    // The worker exits when this pipe closes, so a killed gateway never
    // leaves a worker holding its port with old code.
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  });
  const child = command.spawn();
  instance.child = child;
  child.status.then((status) => {
    instance.child = null;
    if (stopping) return;
    console.error(`[gateway] ${fn.name}:${instance.port} exited (${status.code}); restarting`);
    setTimeout(() => supervise(fn, instance), 250);
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`function process on port ${port} did not start`);
}

/** The gateway's own answers carry the functions' CORS headers, so a browser can read them. */
function gatewayError(status: number, message: string): Response {
  return Response.json({ code: status, message }, { status, headers: corsHeaders });
}

const hopByHop = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host"];

async function proxy(
  fn: ServedFunction,
  request: Request,
  rest: string,
  clientAddress: string,
): Promise<Response> {
  const instance = fn.instances[fn.next++ % fn.instances.length];
  const incoming = new URL(request.url);
  const target = `http://127.0.0.1:${instance.port}/${fn.name}${rest}${incoming.search}`;
  const headers = new Headers(request.headers);
  for (const name of hopByHop) headers.delete(name);
  // As the platform's edge does, name the caller's address for the function.
  headers.set("x-forwarded-for", clientAddress);
  try {
    const upstream = await fetch(target, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
      signal: request.signal,
    });
    return new Response(upstream.body, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: upstream.headers,
    });
  } catch (error) {
    if (request.signal.aborted) return gatewayError(499, "client closed the request");
    console.error(`[gateway] ${fn.name}: ${error}`);
    // The worker is (re)starting: a moment's wait is all a client needs.
    const response = gatewayError(503, "the function is restarting; retry shortly");
    response.headers.set("Retry-After", "1");
    return response;
  }
}

/**
 * Stops with a message naming the first port already taken: a function port
 * held by another stack's process would be proxied to as if it were ours.
 */
function ensurePortsFree(ports: number[]): void {
  for (const port of ports) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      console.error(
        `[gateway] 127.0.0.1:${port} is in use (another stack?): the gateway needs ` +
          `${apiPort} and ${apiPort + 100} and up for its function processes`,
      );
      Deno.exit(1);
    }
  }
}

const functions = await discoverFunctions();
ensurePortsFree([apiPort, ...functions.flatMap((fn) => fn.instances.map((i) => i.port))]);
const byName = new Map(functions.map((fn) => [fn.name, fn]));
for (const fn of functions) for (const instance of fn.instances) supervise(fn, instance);
await Promise.all(functions.flatMap((fn) => fn.instances.map((i) => waitForPort(i.port))));

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: apiPort,
  onListen: () =>
    console.error(
      `[gateway] serving ${
        functions.map((fn) => fn.name).join(", ")
      } on http://127.0.0.1:${apiPort}/functions/v1/`,
    ),
}, async (request, info) => {
  // A page elsewhere whose name was rebound to 127.0.0.1 must not reach the
  // dashboard or the functions through its visitor's browser.
  const host = request.headers.get("host");
  if (!isLoopbackHost(host)) {
    return gatewayError(
      403,
      `the Host ${JSON.stringify(host)} is not this gateway's: use http://127.0.0.1:${apiPort}`,
    );
  }
  const { pathname } = new URL(request.url);
  if (pathname === "/dashboard" || pathname.startsWith("/dashboard/")) {
    const { serveDashboard } = await import("../dashboard/server.ts");
    return await serveDashboard(request, runtimeEnv.SUPABASE_DB_URL);
  }
  const match = pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
  if (!match) return gatewayError(404, "not found");
  const [, name, rest = ""] = match;
  // The pid tells scripts/stack that this gateway answers, not another one.
  if (name === "_health") return Response.json({ ok: true, pid: Deno.pid });
  const fn = byName.get(name);
  if (!fn) return gatewayError(404, `function ${name} not found`);
  if (request.method !== "OPTIONS" && fn.verifyJwt) {
    const failure = await verifyGatewayJwt(request.headers.get("authorization"), jwtKeys);
    if (failure) return gatewayError(401, failure);
  }
  return await proxy(fn, request, rest, (info.remoteAddr as Deno.NetAddr).hostname);
});

async function shutdown(): Promise<void> {
  stopping = true;
  for (const fn of functions) {
    for (const instance of fn.instances) {
      try {
        instance.child?.kill("SIGTERM");
      } catch { /* already gone */ }
    }
  }
  await server.shutdown();
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", shutdown);
Deno.addSignalListener("SIGINT", shutdown);

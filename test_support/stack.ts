/**
 * What integration tests need from the local stack (`scripts/stack up`): its
 * URLs and keys, a direct Postgres connection to check rows, signed-in users
 * with their access tokens, and tokens shaped to be refused.
 *
 * Tests isolate themselves by making their own users, sessions and event ids
 * (random UUIDs), so they never need to empty the database.
 *
 * @example
 * ```ts
 * import { authHeaders, createUser, sql, trackUrl } from "./stack.ts";
 *
 * async function storedRowsOfAView() {
 *   const user = await createUser();
 *   const body = JSON.stringify({ eventType: "view", entityType: "event", entityId: "event-1" });
 *   const res = await fetch(trackUrl, { method: "POST", headers: authHeaders(user.token), body });
 *   await res.body?.cancel();
 *   return await sql`select * from public.user_interactions where user_id = ${user.id}`;
 * }
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { SignJWT } from "jose";

function env(name: string, fallback: string): string {
  return Deno.env.get(name) ?? fallback;
}

/** The stack's endpoints and keys, as `scripts/stack env` prints them. */
export const stack = {
  url: env("SUPABASE_URL", "http://127.0.0.1:54321"),
  anonKey: env(
    "SUPABASE_ANON_KEY",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
  ),
  serviceRoleKey: env(
    "SUPABASE_SERVICE_ROLE_KEY",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
  ),
  publishableKey: env("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"),
  secretKey: env("SUPABASE_SECRET_KEY", "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"),
  dbUrl: env("SUPABASE_DB_URL", "postgresql://postgres:postgres@127.0.0.1:54322/postgres"),
  jwtSecret: env("SUPABASE_JWT_SECRET", "super-secret-jwt-token-with-at-least-32-characters-long"),
};

/** The track endpoint: the local gateway's, or `TRACK_URL` to test another deployment. */
export const trackUrl = Deno.env.get("TRACK_URL") ?? `${stack.url}/functions/v1/track`;

/** A direct connection as `postgres`, for arranging and checking rows. */
export const sql = postgres(stack.dbUrl, { max: 4, onnotice: () => {}, prepare: false });

const secret = () => new TextEncoder().encode(stack.jwtSecret);

/** Claims to add to or override in a minted token. */
export interface TokenOptions {
  /** Seconds from now until the token expires; negative for an expired one. */
  expiresIn?: number;
  /** Seconds from now before which the token is not valid. */
  notBefore?: number;
  /** Extra or replaced claims. */
  claims?: Record<string, unknown>;
  /** Another signing secret, for a forged token. */
  secret?: string;
}

/** Mints an HS256 access token the way Supabase Auth does for a signed-in user. */
export async function mintUserJwt(sub: string, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({
    role: "authenticated",
    aud: "authenticated",
    sub,
    iss: `${stack.url}/auth/v1`,
    ...options.claims,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 3600));
  if (options.notBefore !== undefined) jwt.setNotBefore(now + options.notBefore);
  const key = options.secret ? new TextEncoder().encode(options.secret) : secret();
  return await jwt.sign(key);
}

/** A signed-in user: a row in `auth.users` and a valid access token. */
export interface TestUser {
  id: string;
  token: string;
}

/** Creates a user in `auth.users` and mints their access token. */
export async function createUser(): Promise<TestUser> {
  const id = crypto.randomUUID();
  await sql`
    insert into auth.users (id, aud, role, email, created_at, updated_at)
    values (${id}, 'authenticated', 'authenticated', ${`${id}@example.test`}, now(), now())
  `;
  return { id, token: await mintUserJwt(id) };
}

/** Headers of a JSON request carrying `token` the way supabase-js sends it. */
export function authHeaders(token: string): Record<string, string> {
  return {
    "Authorization": `Bearer ${token}`,
    "apikey": stack.anonKey,
    "Content-Type": "application/json",
  };
}

/**
 * Whether this test run may reach the local stack. Integration tests need
 * network access (`deno test --allow-all`); a run without it, such as the
 * unit-test task, lists them as ignored instead of failing them.
 */
export const canReachStack = (await Deno.permissions.query({ name: "net" })).state === "granted";

/**
 * Declares a test against the local stack. Its Postgres pool and HTTP
 * connections outlive one test by design, so the resource sanitizers are off.
 */
export function integrationTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, ignore: !canReachStack, sanitizeOps: false, sanitizeResources: false });
}

/** A response of the track function, its body parsed. */
export interface TrackResponse {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Options of {@link postTrack}. */
export interface PostOptions {
  /** The bearer token; the anon key when not given, none when null. */
  token?: string | null;
  /** The body as bytes or text, sent as is instead of `JSON.stringify(body)`. */
  raw?: BodyInit;
  /** Another endpoint, for a function instance a test started itself. */
  url?: string;
  method?: string;
}

/** POSTs `body` to the track function and reads the answer. */
export async function postTrack(body: unknown, options: PostOptions = {}): Promise<TrackResponse> {
  const token = options.token === undefined ? stack.anonKey : options.token;
  const headers: Record<string, string> = token === null
    ? { "Content-Type": "application/json" }
    : authHeaders(token);
  const response = await fetch(options.url ?? trackUrl, {
    method: options.method ?? "POST",
    headers,
    body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch { /* not JSON: keep the text */ }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** A function instance started by a test, and how to stop it. */
export interface FunctionInstance {
  url: string;
  stop(): Promise<void>;
  /** What the function has written to stderr so far (its request and error log). */
  log(): string;
}

/**
 * Starts `supabase/functions/<name>/index.ts` as the gateway does, in its own
 * Deno process on a free loopback port, with the stack's environment plus
 * `env` (to point it at another database, for example). No gateway in front:
 * the function checks the JWT itself.
 */
export async function startFunction(
  name: string,
  env: Record<string, string> = {},
): Promise<FunctionInstance> {
  const port = freePort();
  const root = new URL("../", import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "--quiet",
      fileURLToPath(new URL("scripts/gateway/worker.ts", root)),
      fileURLToPath(new URL(`supabase/functions/${name}/index.ts`, root)),
      String(port),
    ],
    env: {
      SUPABASE_URL: stack.url,
      SUPABASE_ANON_KEY: stack.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceRoleKey,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: stack.publishableKey }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: stack.secretKey }),
      SUPABASE_DB_URL: stack.dbUrl,
      SUPABASE_JWT_SECRET: stack.jwtSecret,
      ...env,
    },
    // The worker runs while its stdin is open, as under the gateway.
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Read as it comes, so that a full pipe never blocks the function.
  let log = "";
  const reading = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      if (log.length < 1_000_000) log += text;
    }
  })().catch(() => {});
  const stop = async () => {
    await child.stdin.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await reading;
  };
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { url: `http://127.0.0.1:${port}/${name}`, stop, log: () => log };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await stop();
  throw new Error(`the ${name} function did not start on port ${port}`);
}

/** A loopback port nothing listens on right now (a database that cannot be reached, say). */
export function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

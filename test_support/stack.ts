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
 * const user = await createUser();
 * const res = await fetch(trackUrl, { method: "POST", headers: authHeaders(user.token), body });
 * const rows = await sql`select * from public.user_interactions where user_id = ${user.id}`;
 * ```
 *
 * @module
 */
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
  dbUrl: env("SUPABASE_DB_URL", "postgresql://postgres:postgres@127.0.0.1:54322/postgres"),
  jwtSecret: env("SUPABASE_JWT_SECRET", "super-secret-jwt-token-with-at-least-32-characters-long"),
};

/** The track endpoint of the local functions gateway. */
export const trackUrl = `${stack.url}/functions/v1/track`;

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

/**
 * Who is calling: the principal is read from the verified JWT and from
 * nothing else. A user's access token (`role: authenticated`) names the user
 * in `sub`; the project's anon key allows anonymous tracking; the
 * service-role key is a trusted server.
 *
 * Only the algorithms the project's keys use are accepted, so a token signed
 * with `none`, or with a public key posing as an HMAC secret, is refused.
 *
 * A token whose signature checked out is remembered, by its exact text, for
 * the keys that verified it, until it expires and for at most
 * {@link TRUST_MS}: the same browser sends the same access token with every
 * batch, and every anonymous visitor the same anon key, so most requests
 * skip a signature check that costs 100 µs or so of CPU. Any other text,
 * a forged or altered token included, is checked in full.
 *
 * @example
 * ```ts
 * const result = await verifyAccessToken(req.headers.get("authorization"), {
 *   secret: new TextEncoder().encode(Deno.env.get("SUPABASE_JWT_SECRET")!),
 * });
 * if (result.ok) console.log(principalOf(result.value));
 * ```
 *
 * @module
 */
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";

/** Verified claims of a Supabase JWT. */
export interface AccessClaims extends JWTPayload {
  role?: string;
}

/** The caller, as the track function needs to know it. */
export type Principal =
  | { kind: "user"; userId: string }
  | { kind: "anon" }
  | { kind: "service" };

/** Why a request is not authenticated. */
export interface AuthError {
  message: string;
}

/** A value or the reason there is none. */
export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

/** How to check signatures: the HS256 project secret, or a JWKS for asymmetric keys. */
export interface VerificationKeys {
  secret?: Uint8Array;
  jwks?: ReturnType<typeof createRemoteJWKSet>;
  /** Accept only tokens with this `iss`, when set. */
  issuer?: string;
}

/** How long a verified token is trusted without checking its signature again. */
export const TRUST_MS = 5 * 60_000;
/** Tokens remembered per set of keys; past this, the oldest is forgotten. */
const TRUSTED_TOKENS_MAX = 10_000;
/** Seconds of clock skew allowed on `exp` and `nbf`. */
const CLOCK_TOLERANCE_S = 5;

interface Trusted {
  claims: AccessClaims;
  untilMs: number;
}

const trustedByKeys = new WeakMap<VerificationKeys, Map<string, Trusted>>();

function trustedClaims(keys: VerificationKeys, token: string, atMs: number) {
  const trusted = trustedByKeys.get(keys)?.get(token);
  if (!trusted) return undefined;
  if (atMs < trusted.untilMs) return trusted.claims;
  trustedByKeys.get(keys)!.delete(token);
  return undefined;
}

function trust(keys: VerificationKeys, token: string, claims: AccessClaims, atMs: number) {
  let tokens = trustedByKeys.get(keys);
  if (!tokens) trustedByKeys.set(keys, tokens = new Map());
  // Expired once `exp` is CLOCK_TOLERANCE_S behind the clock, as jwtVerify says.
  const expiresMs = typeof claims.exp === "number"
    ? (claims.exp + CLOCK_TOLERANCE_S) * 1000
    : Infinity;
  if (tokens.size >= TRUSTED_TOKENS_MAX) tokens.delete(tokens.keys().next().value!);
  tokens.set(token, {
    claims: Object.freeze(claims),
    untilMs: Math.min(expiresMs, atMs + TRUST_MS),
  });
}

const bearer = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function fail(message: string): Result<never, AuthError> {
  return { ok: false, error: { message } };
}

/**
 * Verifies the `Authorization` header's bearer token, as of `at`, and returns
 * its claims (frozen: they may be shared with other requests).
 */
export async function verifyAccessToken(
  authorization: string | null,
  keys: VerificationKeys,
  at: Date = new Date(),
): Promise<Result<AccessClaims, AuthError>> {
  if (!authorization) return fail("missing Authorization header");
  const token = authorization.trim().match(bearer)?.[1];
  if (!token) return fail("the Authorization header must be 'Bearer <jwt>'");
  const known = trustedClaims(keys, token, at.getTime());
  if (known) return { ok: true, value: known };
  try {
    const options = { issuer: keys.issuer, clockTolerance: CLOCK_TOLERANCE_S, currentDate: at };
    const { payload } = keys.secret
      ? await jwtVerify<AccessClaims>(token, keys.secret, { ...options, algorithms: ["HS256"] })
      : keys.jwks
      ? await jwtVerify<AccessClaims>(token, keys.jwks, {
        ...options,
        algorithms: ["RS256", "ES256", "EdDSA"],
      })
      : (() => {
        throw new Error("no verification key is configured");
      })();
    trust(keys, token, payload, at.getTime());
    return { ok: true, value: payload };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return fail("the JWT has expired");
    if (error instanceof errors.JWTClaimValidationFailed) {
      return fail(`the JWT's ${error.claim} claim is not valid`);
    }
    if (error instanceof errors.JOSEAlgNotAllowed) {
      return fail("the JWT's signing algorithm is not allowed");
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return fail("the JWT's signature is not valid");
    }
    if (error instanceof errors.JOSEError) return fail("the JWT is malformed or not valid");
    throw error;
  }
}

/** Maps verified claims to a principal, or says why they name none. */
export function principalOf(claims: AccessClaims): Result<Principal, AuthError> {
  switch (claims.role) {
    case "authenticated":
      if (typeof claims.sub === "string" && uuid.test(claims.sub)) {
        return { ok: true, value: { kind: "user", userId: claims.sub.toLowerCase() } };
      }
      return fail("a user token must carry the user's id in 'sub'");
    case "anon":
      return { ok: true, value: { kind: "anon" } };
    case "service_role":
      return { ok: true, value: { kind: "service" } };
    default:
      return fail("the JWT's role is not one this function serves");
  }
}

/** The keys from the function's environment: the JWT secret, else the project's JWKS. */
export function keysFromEnv(env: { get(name: string): string | undefined }): VerificationKeys {
  const secret = env.get("SUPABASE_JWT_SECRET") ?? env.get("JWT_SECRET");
  if (secret) return { secret: new TextEncoder().encode(secret) };
  const url = env.get("SUPABASE_URL");
  if (!url) throw new Error("SUPABASE_JWT_SECRET or SUPABASE_URL must be set");
  return { jwks: createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", url)) };
}

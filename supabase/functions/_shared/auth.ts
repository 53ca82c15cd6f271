/**
 * Who is calling: the principal is read from the verified JWT or the
 * project's API key, and from nothing else. A user's access token (`role:
 * authenticated`) names the user in `sub`; the project's anon key or a
 * publishable key (`sb_publishable_...`) allows anonymous tracking; the
 * service-role key or a secret key (`sb_secret_...`) is a trusted server.
 *
 * Publishable and secret keys are not JWTs: they are recognised by their
 * exact text among the keys the platform injects. supabase-js sends the key
 * as the bearer while nobody is signed in, and always in the `apikey`
 * header, which is read when there is no `Authorization` header at all
 * (see {@link authorizationOf}).
 *
 * Only the algorithms the project's keys use are accepted, so a token signed
 * with `none`, or with a public key posing as an HMAC secret, is refused.
 * An HS256 token is checked with the project's JWT secret; on a hosted
 * project, which gives functions no JWT secret, the legacy anon and
 * service-role keys it does inject are recognised by their exact text
 * instead. Asymmetric tokens (RS256, ES256, EdDSA) are checked with the
 * project's JWKS.
 *
 * A token whose signature checked out is remembered, by its exact text, for
 * the keys that verified it, until it expires and for at most
 * {@link TRUST_MS}: the same browser sends the same access token with every
 * batch, and every anonymous visitor the same anon key, so most requests
 * skip a signature check that costs 100 µs or so of CPU. Any other text,
 * a forged or altered token included, is checked in full.
 *
 * Make the keys once and pass the same object with every request: verified
 * tokens are remembered per keys object.
 *
 * @example
 * ```ts
 * import { principalOf, verifyAccessToken } from "./auth.ts";
 *
 * const keys = { secret: new TextEncoder().encode(Deno.env.get("SUPABASE_JWT_SECRET")!) };
 *
 * async function handler(req: Request): Promise<Response> {
 *   const result = await verifyAccessToken(req.headers.get("authorization"), keys);
 *   const principal = result.ok ? principalOf(result.value) : result;
 *   if (!principal.ok) return new Response(principal.error.message, { status: 401 });
 *   return new Response(`hello, ${principal.value.kind}`);
 * }
 * ```
 *
 * @module
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";

/** Verified claims of a Supabase JWT. */
export interface AccessClaims extends JWTPayload {
  role?: string;
}

/** The caller, as the track function needs to know it. */
export type Principal =
  | { kind: "user"; userId: string }
  | { kind: "anon" }
  | { kind: "service" };

/**
 * Why a request is not authenticated. `unavailable` means the token could not
 * be checked at all (the project's JWKS could not be fetched): the caller is
 * not at fault and may try again.
 */
export interface AuthError {
  message: string;
  unavailable?: true;
}

/** A value or the reason there is none. */
export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

/** How to check signatures: the HS256 project secret, and a JWKS for asymmetric keys. */
export interface VerificationKeys {
  secret?: Uint8Array;
  jwks?: JWTVerifyGetKey;
  /**
   * HS256 keys the platform handed the function (the legacy anon and
   * service-role keys), taken as verified when a bearer is exactly one of
   * them: how HS256 keys are told apart where there is no secret.
   */
  apiKeys?: readonly string[];
  /** Accept only tokens with this `iss`, when set. */
  issuer?: string;
  /** The project's publishable keys (`sb_publishable_...`): anonymous callers. */
  publishableKeys?: readonly string[];
  /** The project's secret keys (`sb_secret_...`): trusted servers. */
  secretKeys?: readonly string[];
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

// The scheme name is case-insensitive (RFC 9110, section 11.1): `bearer` is `Bearer`.
const bearer = /^Bearer\s+(\S+)$/i;
const jwtShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** How Supabase's publishable and secret API keys begin; a JWT never does. */
const API_KEY_PREFIX = "sb_";
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
  if (token?.startsWith(API_KEY_PREFIX)) return apiKeyClaims(token, keys);
  if (!token || !jwtShape.test(token)) {
    return fail("the Authorization header must be 'Bearer <jwt>' or 'Bearer <API key>'");
  }
  const known = trustedClaims(keys, token, at.getTime());
  if (known) return { ok: true, value: known };
  let algorithm: unknown;
  try {
    algorithm = decodeProtectedHeader(token).alg;
  } catch {
    // jose throws a TypeError, not one of its own errors, for a header that
    // is not base64url-encoded JSON.
    return fail("the JWT is malformed or not valid");
  }
  const symmetric = algorithm === "HS256";
  try {
    const options = { issuer: keys.issuer, clockTolerance: CLOCK_TOLERANCE_S, currentDate: at };
    let payload: AccessClaims;
    if (symmetric && keys.secret) {
      ({ payload } = await jwtVerify<AccessClaims>(token, keys.secret, {
        ...options,
        algorithms: ["HS256"],
      }));
    } else if (symmetric && keys.apiKeys?.some((key) => sameText(key, token))) {
      payload = platformKeyClaims(token, keys.issuer, at);
    } else if (symmetric) {
      return fail(
        "the JWT is signed with a secret this function was not given (set JWT_SECRET to the " +
          "project's JWT secret to accept HS256 user tokens)",
      );
    } else if (keys.jwks) {
      try {
        ({ payload } = await jwtVerify<AccessClaims>(token, keys.jwks, {
          ...options,
          algorithms: ["RS256", "ES256", "EdDSA"],
        }));
      } catch (error) {
        if (jwksUnavailable(error)) {
          console.error("track: the JWKS could not be read", error);
          return {
            ok: false,
            error: { message: "the project's signing keys cannot be read now", unavailable: true },
          };
        }
        throw error;
      }
    } else {
      return fail("the JWT's signing algorithm is not allowed");
    }
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

const publishableKeyClaims: AccessClaims = Object.freeze({ role: "anon" });
const secretKeyClaims: AccessClaims = Object.freeze({ role: "service_role" });

/** The claims a publishable or secret key stands for, if it is one of the project's. */
function apiKeyClaims(key: string, keys: VerificationKeys): Result<AccessClaims, AuthError> {
  if (keys.publishableKeys?.some((known) => sameText(known, key))) {
    return { ok: true, value: publishableKeyClaims };
  }
  if (keys.secretKeys?.some((known) => sameText(known, key))) {
    return { ok: true, value: secretKeyClaims };
  }
  return fail("the API key is not one of the project's publishable or secret keys");
}

/**
 * The credentials a request carries, as an `Authorization` value: its own
 * `Authorization` header, or, when it has none, its `apikey` header if that
 * holds a publishable or secret key (supabase-js created with
 * `omitApiKeyAsBearer` sends only that). A legacy key alone in `apikey` is
 * not taken: a JWT is expected as the bearer, as the platform expects it.
 */
export function authorizationOf(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization !== null) return authorization;
  const apiKey = headers.get("apikey")?.trim();
  return apiKey?.startsWith(API_KEY_PREFIX) ? `Bearer ${apiKey}` : null;
}

/**
 * Whether a JWKS lookup failed for want of the key set rather than because of
 * the token: a timeout, a network error, or an answer that is not a key set.
 * The token's own faults (bad encoding, unknown `kid`, bad signature) are
 * JOSE errors with codes of their own; jose reports a failed fetch with the
 * generic JOSEError, or lets fetch's own error through.
 */
function jwksUnavailable(error: unknown): boolean {
  if (!(error instanceof errors.JOSEError)) return true;
  return error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid ||
    error.code === errors.JOSEError.code;
}

/** Whether two strings are equal, in a time that does not tell where they differ: one is a secret. */
function sameText(secret: string, guess: string): boolean {
  if (secret.length !== guess.length) return false;
  let difference = 0;
  for (let i = 0; i < secret.length; i++) difference |= secret.charCodeAt(i) ^ guess.charCodeAt(i);
  return difference === 0;
}

/**
 * The claims of a key the platform injected, checked as jwtVerify checks
 * the time and issuer of any token: the key's text vouches for its signature.
 */
function platformKeyClaims(token: string, issuer: string | undefined, at: Date): AccessClaims {
  const claims = decodeJwt<AccessClaims>(token);
  const now = Math.floor(at.getTime() / 1000);
  if (typeof claims.exp === "number" && claims.exp + CLOCK_TOLERANCE_S <= now) {
    throw new errors.JWTExpired("the JWT has expired", claims, "exp", "check_failed");
  }
  if (issuer !== undefined && claims.iss !== issuer) {
    throw new errors.JWTClaimValidationFailed("unexpected iss", claims, "iss", "check_failed");
  }
  return claims;
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

/**
 * The keys from the function's environment, as the platform injects it:
 * the JWT secret when one is set (`SUPABASE_JWT_SECRET` locally, `JWT_SECRET`
 * as a project secret), the legacy anon and service-role keys, the
 * publishable and secret keys (`SUPABASE_PUBLISHABLE_KEYS` and
 * `SUPABASE_SECRET_KEYS`, JSON objects of named keys, and the single
 * `SUPABASE_PUBLISHABLE_KEY` and `SUPABASE_SECRET_KEY` a self-hosted setup
 * may set instead), and the JWKS (`SUPABASE_JWKS` inline, else fetched from
 * `SUPABASE_URL` when there is no secret).
 */
export function keysFromEnv(env: { get(name: string): string | undefined }): VerificationKeys {
  const secretText = env.get("SUPABASE_JWT_SECRET") || env.get("JWT_SECRET");
  const secret = secretText ? new TextEncoder().encode(secretText) : undefined;
  const apiKeys = [env.get("SUPABASE_ANON_KEY"), env.get("SUPABASE_SERVICE_ROLE_KEY")]
    .filter((key): key is string => typeof key === "string" && key.split(".").length === 3);
  const publishableKeys = apiKeysFromEnv(env, "PUBLISHABLE", "sb_publishable_");
  const secretKeys = apiKeysFromEnv(env, "SECRET", "sb_secret_");
  const inline = env.get("SUPABASE_JWKS");
  const url = env.get("SUPABASE_URL");
  let jwks: JWTVerifyGetKey | undefined;
  if (inline) {
    const parsed = JSON.parse(inline) as JSONWebKeySet | JSONWebKeySet["keys"];
    jwks = createLocalJWKSet(Array.isArray(parsed) ? { keys: parsed } : parsed);
  } else if (url && !secret) {
    jwks = createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", url));
  }
  if (!secret && !jwks) {
    throw new Error("set SUPABASE_JWT_SECRET (or JWT_SECRET), SUPABASE_JWKS or SUPABASE_URL");
  }
  return { secret, jwks, apiKeys, publishableKeys, secretKeys };
}

/**
 * The keys of one kind, `SUPABASE_<kind>_KEYS` (`{"default": "sb_..."}`)
 * and `SUPABASE_<kind>_KEY`. A value without the kind's prefix is not a key
 * of that kind and is left out: a secret key listed as publishable must not
 * make its holders anonymous, nor the reverse make visitors servers.
 */
function apiKeysFromEnv(
  env: { get(name: string): string | undefined },
  kind: "PUBLISHABLE" | "SECRET",
  prefix: string,
): string[] {
  const name = `SUPABASE_${kind}_KEYS`;
  const named = env.get(name);
  let values: unknown[] = [];
  if (named) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(named);
    } catch {
      parsed = null;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error(
        `${name} must be a JSON object of named keys, like {"default":"${prefix}..."}`,
      );
    }
    values = Object.values(parsed);
  }
  values.push(env.get(`SUPABASE_${kind}_KEY`));
  // Trimmed, as the header's value is: a key copied with a newline from a
  // .env file would otherwise never match, and every request be refused.
  return values
    .map((key) => typeof key === "string" ? key.trim() : key)
    .filter((key): key is string => typeof key === "string" && key.startsWith(prefix));
}

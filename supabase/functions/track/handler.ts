/**
 * The HTTP handler of the `track` function: answer CORS preflights, take the
 * caller from the verified JWT, read a capped body, validate each event, make
 * one database call, and answer with the outcome of every event.
 *
 * Who is calling comes from the token alone, never from the body: a user's
 * access token stores `user_id = sub`; the anon key or a publishable key
 * tracks anonymously; the service-role key or a secret key is treated as an
 * anonymous caller too, since a server sending on visitors' behalf names no
 * signed-in user.
 *
 * Statuses: 200 when at least one event was accepted or was a duplicate; 400
 * when every event was refused (same body) or the body is not JSON, not an
 * event or batch; 401 for a missing or bad JWT or API key; 405 for methods
 * other than POST and OPTIONS; 413 over 512 KiB or 500 events; 429 over the
 * rate limit; 503 when the database cannot take the request, or when the
 * project's signing keys cannot be fetched to check the JWT: nothing of it
 * is stored, or, when the database's answer was lost, it may have been, and
 * a retry with the same event ids is recognised as duplicates.
 * Each request logs one line to stderr.
 *
 * Rate limit (see `rate_limit.ts`): per principal (`user:<id>`, or
 * `ip:<address>` for anonymous and service-role callers), at most 120
 * requests and 6000 events per minute by default, a minute's worth in one
 * burst. This process checks the requests before reading the body; the
 * database checks requests and events across every instance in the same
 * statement that stores the events, and then stores and logs nothing of a
 * refused request. Either answers 429 with `Retry-After`. Environment:
 * `TRACK_RATE_LIMIT=off`, `TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE`,
 * `TRACK_RATE_LIMIT_EVENTS_PER_MINUTE`; and `TRACK_DB_STATEMENT_TIMEOUT_MS`
 * (default 10 000) bounds the database call, answered 503 when exceeded.
 *
 * @example
 * ```sh
 * curl -X POST http://127.0.0.1:54321/functions/v1/track \
 *   -H "Authorization: Bearer $SUPABASE_ANON_KEY" -H "Content-Type: application/json" \
 *   -d '{"eventType":"view","entityType":"event","entityId":"event-123","anonymousId":"visitor-1"}'
 * ```
 *
 * @module
 */
import {
  authorizationOf,
  keysFromEnv,
  type Principal,
  principalOf,
  verifyAccessToken,
} from "../_shared/auth.ts";
import { corsHeaders } from "../_shared/cors.ts";
import {
  DatabaseError,
  type DatabaseSituation,
  ingestInteractions,
  type IngestOutcome,
  type IngestResult,
} from "../_shared/db.ts";
import { errorResponse, jsonResponse, readBodyCapped } from "../_shared/http.ts";
import { MAX_REQUEST_BYTES } from "../_shared/limits.ts";
import {
  parseJson,
  parseTrackBody,
  type RejectedEvent,
  type TrackResult,
} from "../_shared/schemas.ts";
import { prepareEvents } from "./prepare.ts";
import {
  LocalRateLimiter,
  principalKey,
  type RateLimits,
  rateLimitsFromEnv,
} from "./rate_limit.ts";
import { boundRejections } from "./rejections.ts";

/** Seconds to wait before retrying a 503: soon when Postgres was unreachable, later when it failed. */
const RETRY_AFTER_UNAVAILABLE_S = 5;
const RETRY_AFTER_FAILED_S = 30;

/** What a 503 says happened, before it says whether anything was stored. */
const databaseSituations: Record<DatabaseSituation, string> = {
  unreachable: "the database is unreachable",
  busy: "the database is too busy to take the request",
  statement_timeout: "the database did not finish storing the events in time",
  read_only: "the database takes no writes right now",
  no_answer: "the database did not answer in time",
  connection_lost: "the connection to the database was lost",
  failed: "the database could not store the events",
};

let verificationKeys: ReturnType<typeof keysFromEnv> | undefined;
/** This process's bucket, kept for as long as the limit it was made for. */
let localLimiter: LocalRateLimiter | undefined;

/**
 * The limits and this process's bucket, or null when limits are off. The
 * environment is read on every request (a few lookups), so a change to it
 * applies at once, as it does for tests that run the handler in-process.
 */
function rateLimiting(): { limits: RateLimits; local: LocalRateLimiter } | null {
  const limits = rateLimitsFromEnv(Deno.env);
  if (!limits) return null;
  if (localLimiter?.requestsPerMinute !== limits.requestsPerMinute) {
    localLimiter = new LocalRateLimiter(limits.requestsPerMinute);
  }
  return { limits, local: localLimiter };
}

function rateLimited(retryAfterSeconds: number): Outcome {
  return {
    response: errorResponse(429, "rate_limited", "too many requests; retry later", {
      "Retry-After": String(retryAfterSeconds),
    }),
  };
}

const roleOf = { user: "authenticated", anon: "anon", service: "service_role" } as const;

interface Outcome {
  response: Response;
  result?: TrackResult;
}

/**
 * Answers one request to `/functions/v1/track`. `info`, which `Deno.serve`
 * passes, gives the caller's address when no `X-Forwarded-For` names one.
 */
export async function handler(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
  const started = performance.now();
  let outcome: Outcome;
  try {
    outcome = await track(request, info);
  } catch (error) {
    console.error("track: unexpected error", error);
    outcome = {
      response: errorResponse(500, "internal_error", "the request could not be processed"),
    };
  }
  const { response, result } = outcome;
  const counts = result
    ? ` accepted=${result.accepted} duplicates=${result.duplicates} rejected=${result.rejected.length}`
    : "";
  const ms = (performance.now() - started).toFixed(1);
  console.error(`track ${request.method} ${response.status}${counts} ${ms}ms`);
  return response;
}

async function authenticate(request: Request): Promise<Principal | Response> {
  verificationKeys ??= keysFromEnv(Deno.env);
  const verified = await verifyAccessToken(authorizationOf(request.headers), verificationKeys);
  const principal = verified.ok ? principalOf(verified.value) : verified;
  if (principal.ok) return principal.value;
  if (!verified.ok && verified.error.unavailable) {
    // Not the caller's fault: a 401 would make a client drop the events.
    return errorResponse(503, "auth_unavailable", `${verified.error.message}; retry later`, {
      "Retry-After": String(RETRY_AFTER_UNAVAILABLE_S),
    });
  }
  return errorResponse(401, "unauthorized", principal.error.message, {
    "WWW-Authenticate": 'Bearer error="invalid_token"',
  });
}

async function track(request: Request, info?: Deno.ServeHandlerInfo): Promise<Outcome> {
  if (request.method === "OPTIONS") {
    return { response: new Response(null, { status: 204, headers: corsHeaders }) };
  }
  if (request.method !== "POST") {
    return {
      response: errorResponse(
        405,
        "method_not_allowed",
        `${request.method} is not allowed; use POST`,
        {
          Allow: "POST, OPTIONS",
        },
      ),
    };
  }

  const principal = await authenticate(request);
  if (principal instanceof Response) return { response: principal };

  // This process's share of the rate limit, before a byte of the body is read.
  const limiting = rateLimiting();
  const peer = info?.remoteAddr as Partial<Deno.NetAddr> | undefined;
  const key = limiting ? principalKey(principal, request.headers, peer?.hostname) : null;
  const local = limiting && key ? limiting.local.take(key) : { ok: true as const };
  if (!local.ok) {
    await request.body?.cancel().catch(() => {});
    return rateLimited(local.retryAfterSeconds);
  }

  const receivedAt = new Date();
  let bytes: Uint8Array | null;
  try {
    bytes = await readBodyCapped(request, MAX_REQUEST_BYTES);
  } catch {
    // The connection broke while the body arrived: the client is gone or
    // will retry; there is nothing to store and nothing went wrong here.
    return {
      response: errorResponse(400, "incomplete_body", "the request body could not be read"),
    };
  }
  if (bytes === null) {
    return {
      response: errorResponse(
        413,
        "payload_too_large",
        `the body must be at most ${MAX_REQUEST_BYTES} bytes`,
      ),
    };
  }
  let json: unknown;
  try {
    json = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return { response: errorResponse(400, "invalid_json", "the body is not valid UTF-8 JSON") };
  }

  const body = parseTrackBody(json);
  if (!body.ok) {
    const status = body.error.code === "too_many_events" ? 413 : 400;
    return { response: errorResponse(status, body.error.code, body.error.message) };
  }

  const prepared = prepareEvents(body.events, body.sentAt, principal, receivedAt);
  const refused = boundRejections([...body.rejected, ...prepared.rejected]);
  let stored: IngestResult;
  try {
    // Called even when every event was refused: the call records the
    // refusals in system_errors, in the same transaction as everything else.
    stored = await ingestInteractions({
      userId: principal.kind === "user" ? principal.userId : null,
      events: prepared.rows,
      rejected: refused,
      context: { function: "track", role: roleOf[principal.kind], request_id: crypto.randomUUID() },
      // Every event the request carries counts, valid or not.
      rateLimit: limiting && key
        ? { key, events: body.events.length + body.rejected.length, ...limiting.limits }
        : undefined,
    });
  } catch (error) {
    if (!(error instanceof DatabaseError)) throw error;
    console.error(`track: database ${error.reason}: ${error.message}`);
    const unavailable = error.reason === "unavailable";
    const outcome = error.maybeStored
      ? "the events may have been stored: retry later with the same eventIds " +
        "(events already stored are recognised as duplicates)"
      : "nothing was stored, retry later";
    return {
      response: errorResponse(
        503,
        unavailable ? "database_unavailable" : "database_error",
        `${databaseSituations[error.situation]}; ${outcome}`,
        {
          "Retry-After": String(unavailable ? RETRY_AFTER_UNAVAILABLE_S : RETRY_AFTER_FAILED_S),
        },
      ),
    };
  }

  if (!stored.allowed) return rateLimited(stored.retryAfterSeconds);

  const result = summarize(stored.accepted, stored.notAccepted, refused, body.events);
  const status = result.accepted + result.duplicates > 0 ? 200 : 400;
  return { response: jsonResponse(result, status), result };
}

/** Counts the database's outcomes and lists every refused event, in request order. */
function summarize(
  accepted: number,
  notAccepted: IngestOutcome[],
  refused: RejectedEvent[],
  events: ReadonlyArray<{ index: number; event: { eventId?: string } }>,
): TrackResult {
  let clientIds: Map<number, string | undefined> | undefined;
  const rejected = [...refused];
  let duplicates = 0;
  for (const { event_index: index, outcome, path, reason } of notAccepted) {
    if (outcome === "duplicate") duplicates++;
    else {
      const message = reason ?? "refused by the database";
      clientIds ??= new Map(events.map(({ index, event }) => [index, event.eventId]));
      const eventId = clientIds.get(index);
      rejected.push({
        index,
        ...(eventId && { eventId }),
        errors: [{ path: path ?? "", message }],
      });
    }
  }
  rejected.sort((a, b) => a.index - b.index);
  return { accepted, duplicates, rejected };
}

/**
 * Sending one batch to the `track` function and reading what became of it:
 * through the app's own `supabase.functions.invoke` in the normal case, or
 * through a `keepalive` fetch with the same headers when the page is being
 * hidden or closed and an ordinary request could be cut off.
 *
 * The answer is one of three outcomes: the server processed the batch (each
 * event accepted, a duplicate, or rejected with reasons), refused it (any
 * other 4xx: never sent again as it was; a 413 makes the tracker send its
 * events again in smaller requests), or could not take it now (network error,
 * 429, 5xx: retried later, after `Retry-After` when given).
 *
 * @example
 * ```ts
 * import type { SupabaseClient } from "@supabase/supabase-js";
 * import { classify, invokeTrack } from "./transport.ts";
 *
 * async function send(
 *   supabase: SupabaseClient,
 *   body: string,
 *   headers: Record<string, string>,
 *   scheduleRetry: (retryAfterMs: number | null) => void,
 * ) {
 *   const delivery = await invokeTrack(supabase.functions, "track", body, headers);
 *   if (delivery.kind === "retry") scheduleRetry(delivery.retryAfterMs);
 *   return delivery;
 * }
 *
 * const busy = new Response(null, { status: 503, headers: { "Retry-After": "3" } });
 * await classify(busy); // { kind: "retry", status: 503, retryAfterMs: 3000, message: "…" }
 * ```
 *
 * @module
 */
import { parseRetryAfter } from "./backoff.ts";
import type { TrackResult } from "./contract.ts";

/** What the tracker needs of `supabase.functions`. */
export interface FunctionsInvoker {
  invoke(
    functionName: string,
    options: { body?: string; headers?: Record<string, string>; signal?: AbortSignal },
  ): Promise<{ data: unknown; error: unknown; response?: Response }>;
}

/** What became of one request. */
export type Delivery =
  | { kind: "processed"; status: number; result: TrackResult }
  | { kind: "refused"; status: number; message: string }
  | { kind: "retry"; status: number | null; retryAfterMs: number | null; message: string };

/** How long a request may go unanswered before it counts as failed and is retried. */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Sends `body` (a JSON batch) with `supabase.functions.invoke`. A request
 * unanswered after `timeoutMs` is aborted and answered as a network failure,
 * so that a stalled connection never holds up delivery; the events are sent
 * again, and the server recognises any that did arrive.
 */
export async function invokeTrack(
  functions: FunctionsInvoker,
  functionName: string,
  body: string,
  headers: Record<string, string>,
  now: () => number = Date.now,
  timeoutMs: number = REQUEST_TIMEOUT_MS,
): Promise<Delivery> {
  let outcome: Awaited<ReturnType<FunctionsInvoker["invoke"]>>;
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Raced as well as signalled: an invoker that ignores the signal still cannot hang delivery.
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve("timeout");
    }, timeoutMs);
  });
  try {
    const answer = await Promise.race([
      functions.invoke(functionName, {
        body,
        headers: { ...headers, "Content-Type": "application/json" },
        signal: abort.signal,
      }),
      timedOut,
    ]);
    if (answer === "timeout") {
      return networkFailure(new Error(`no answer within ${timeoutMs} ms`));
    }
    outcome = answer;
  } catch (error) {
    return networkFailure(error);
  } finally {
    clearTimeout(timer);
  }
  const { data, error } = outcome;
  // supabase-js answers HTTP errors with the Response as the error's context.
  const response = outcome.response ?? responseOf(error);
  if (error === null || error === undefined) {
    return processed(response?.status ?? 200, data);
  }
  if (response === undefined) return networkFailure(error);
  return await classify(response, now);
}

/**
 * Sends `body` with a `keepalive` fetch, which the browser completes even if
 * the page is closed meanwhile. `headers` must carry what supabase-js would
 * send (`apikey`, `Authorization`).
 */
export async function keepaliveTrack(
  url: string,
  body: string,
  headers: Record<string, string>,
  now: () => number = Date.now,
  timeoutMs: number = REQUEST_TIMEOUT_MS,
): Promise<Delivery> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      keepalive: true,
      headers: { ...headers, "Content-Type": "application/json" },
      body,
      // While the page lives, a stalled request would hold its events forever.
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return networkFailure(error);
  }
  return await classify(response, now);
}

/** The outcome a response stands for. */
export async function classify(
  response: Response,
  now: () => number = Date.now,
): Promise<Delivery> {
  const { status } = response;
  if (status === 429 || status >= 500) {
    await response.body?.cancel().catch(() => {});
    return {
      kind: "retry",
      status,
      retryAfterMs: parseRetryAfter(response.headers.get("Retry-After"), now()),
      message: `the server answered ${status}`,
    };
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // An unreadable body leaves only the status to go by.
  }
  if (status >= 200 && status < 300) return processed(status, body);
  if (status === 400 && isTrackResult(body)) return { kind: "processed", status, result: body };
  return { kind: "refused", status, message: errorMessage(status, body) };
}

function processed(status: number, body: unknown): Delivery {
  // A 2xx means the batch is stored; an answer without the usual counts
  // still means nothing should be sent again.
  const result = isTrackResult(body) ? body : { accepted: 0, duplicates: 0, rejected: [] };
  return { kind: "processed", status, result };
}

function networkFailure(error: unknown): Delivery {
  const cause = (error as { context?: unknown } | null)?.context ?? error;
  return {
    kind: "retry",
    status: null,
    retryAfterMs: null,
    message: `the request failed: ${cause instanceof Error ? cause.message : String(cause)}`,
  };
}

function responseOf(error: unknown): Response | undefined {
  const context = (error as { context?: unknown } | null)?.context;
  return typeof Response !== "undefined" && context instanceof Response ? context : undefined;
}

function isTrackResult(body: unknown): body is TrackResult {
  if (typeof body !== "object" || body === null) return false;
  const { accepted, duplicates, rejected } = body as Record<string, unknown>;
  return typeof accepted === "number" && typeof duplicates === "number" && Array.isArray(rejected);
}

function errorMessage(status: number, body: unknown): string {
  const error = (body as { error?: { message?: unknown } } | null)?.error;
  return typeof error?.message === "string"
    ? `the server answered ${status}: ${error.message}`
    : `the server answered ${status}`;
}

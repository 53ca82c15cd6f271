/**
 * CORS headers for every response of a function that browsers call from any
 * origin with `supabase.functions.invoke`. `Retry-After` is exposed so the
 * client can honour it on 429 and 503.
 *
 * @example
 * ```ts
 * import { corsHeaders } from "./cors.ts";
 *
 * function handler(req: Request): Response {
 *   if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: corsHeaders });
 *   return Response.json({ ok: true }, { headers: corsHeaders });
 * }
 * handler(new Request("http://localhost/functions/v1/track", { method: "OPTIONS" })).status; // 204
 * ```
 *
 * @module
 */

/**
 * Every header supabase-js may send with `functions.invoke`: its own, the
 * `x-region` of a regional invoke, the retry count of a retried request, and
 * the W3C trace context when `tracePropagation` is on. A header missing here
 * fails the preflight, and with it every request.
 */
const allowedHeaders = [
  "authorization",
  "x-client-info",
  "apikey",
  "content-type",
  "x-region",
  "x-retry-count",
  "traceparent",
  "tracestate",
  "baggage",
];

/** The headers that let a browser page on any origin call the function. */
export const corsHeaders: Readonly<Record<string, string>> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "POST, OPTIONS",
  "Access-Control-Allow-Headers": allowedHeaders.join(", "),
  "Access-Control-Expose-Headers": "Retry-After",
  "Access-Control-Max-Age": "86400",
};

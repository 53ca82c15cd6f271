/**
 * Small HTTP helpers for functions: JSON responses that always carry the CORS
 * headers, errors shaped `{ "error": { "code", "message" } }`, and a request
 * body read with a byte cap so an oversized body is never buffered whole.
 *
 * @example
 * ```ts
 * import { errorResponse, jsonResponse, readBodyCapped } from "./http.ts";
 *
 * async function handler(req: Request): Promise<Response> {
 *   const body = await readBodyCapped(req, 1024);
 *   if (body === null) return errorResponse(413, "payload_too_large", "at most 1024 bytes");
 *   return jsonResponse({ bytes: body.byteLength });
 * }
 * const big = new Request("http://localhost/functions/v1/track", {
 *   method: "POST",
 *   body: "x".repeat(2048),
 * });
 * (await handler(big)).status; // 413
 * ```
 *
 * @module
 */
import { corsHeaders } from "./cors.ts";

/** A JSON response with the CORS headers. */
export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return Response.json(body, {
    status,
    headers: { ...corsHeaders, ...Object.fromEntries(new Headers(headers)) },
  });
}

/** An error response: `{ "error": { "code", "message" } }` with the CORS headers. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  headers: HeadersInit = {},
): Response {
  return jsonResponse({ error: { code, message } }, status, headers);
}

/**
 * Reads a request body of at most `maxBytes`. Returns null, having read no
 * more than `maxBytes + 1` bytes, when the body is larger; a declared
 * `Content-Length` over the cap is refused before reading anything.
 */
export async function readBodyCapped(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await request.body?.cancel().catch(() => {});
    return null;
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

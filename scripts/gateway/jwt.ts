/**
 * What `verify_jwt = true` checks before a request reaches a function: a
 * bearer token signed with the project's key that has not expired.
 *
 * @module
 */
import { verifyAccessToken } from "../../supabase/functions/_shared/auth.ts";

/** Returns why the request is refused, or null when its JWT is valid. */
export async function verifyGatewayJwt(
  authorization: string | null,
  secret: Uint8Array,
): Promise<string | null> {
  const result = await verifyAccessToken(authorization, { secret });
  return result.ok ? null : result.error.message;
}

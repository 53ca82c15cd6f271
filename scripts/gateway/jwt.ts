/**
 * What `verify_jwt = true` checks before a request reaches a function: a
 * bearer token signed with the project's key that has not expired. Only a
 * JWT passes: publishable and secret keys are not JWTs, and a function that
 * takes them turns the check off.
 *
 * @module
 */
import { type VerificationKeys, verifyAccessToken } from "../../supabase/functions/_shared/auth.ts";

/**
 * Returns why the request is refused, or null when its JWT is valid. Pass the
 * same `keys` object every time: verified tokens are remembered per object.
 */
export async function verifyGatewayJwt(
  authorization: string | null,
  keys: VerificationKeys,
): Promise<string | null> {
  if (/^Bearer\s+sb_/i.test(authorization?.trim() ?? "")) {
    return "the Authorization header must be 'Bearer <jwt>': an API key is not a JWT";
  }
  const result = await verifyAccessToken(authorization, keys);
  return result.ok ? null : result.error.message;
}

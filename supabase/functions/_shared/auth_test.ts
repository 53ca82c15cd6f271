import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { TRUST_MS, type VerificationKeys, verifyAccessToken } from "./auth.ts";

const encoder = new TextEncoder();
const t0 = new Date("2026-03-10T12:00:00.000Z");
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
const later = (ms: number) => new Date(t0.getTime() + ms);

function keysFor(secret: string): VerificationKeys {
  return { secret: encoder.encode(secret) };
}

async function token(secret: string, claims: { exp?: number }): Promise<string> {
  const jwt = new SignJWT({ role: "anon" }).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(seconds(t0));
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  return await jwt.sign(encoder.encode(secret));
}

const secret = "a-secret-of-at-least-thirty-two-characters";

Deno.test("a remembered token still expires on time", async () => {
  const keys = keysFor(secret);
  const jwt = await token(secret, { exp: seconds(t0) + 60 });
  const first = await verifyAccessToken(`Bearer ${jwt}`, keys, t0);
  assert.equal(first.ok, true);
  // Within the 5 s of clock tolerance past exp, as the full check allows.
  assert.equal((await verifyAccessToken(`Bearer ${jwt}`, keys, later(64_000))).ok, true);
  assert.deepEqual(await verifyAccessToken(`Bearer ${jwt}`, keys, later(65_000)), {
    ok: false,
    error: { message: "the JWT has expired" },
  });
});

Deno.test("an altered token is checked in full, not taken for a remembered one", async () => {
  const keys = keysFor(secret);
  const jwt = await token(secret, { exp: seconds(t0) + 3600 });
  assert.equal((await verifyAccessToken(`Bearer ${jwt}`, keys, t0)).ok, true);
  const [header, payload] = jwt.split(".");
  const forged = `${header}.${payload}.${"A".repeat(43)}`;
  assert.deepEqual(await verifyAccessToken(`Bearer ${forged}`, keys, t0), {
    ok: false,
    error: { message: "the JWT's signature is not valid" },
  });
});

Deno.test("tokens are remembered per set of keys", async () => {
  const jwt = await token(secret, { exp: seconds(t0) + 3600 });
  assert.equal((await verifyAccessToken(`Bearer ${jwt}`, keysFor(secret), t0)).ok, true);
  const other = keysFor("another-secret-of-at-least-thirty-two-chars");
  assert.deepEqual(await verifyAccessToken(`Bearer ${jwt}`, other, t0), {
    ok: false,
    error: { message: "the JWT's signature is not valid" },
  });
});

Deno.test("a token is trusted without a new signature check for TRUST_MS at most", async () => {
  const keys = keysFor(secret);
  const jwt = await token(secret, {});
  assert.equal((await verifyAccessToken(`Bearer ${jwt}`, keys, t0)).ok, true);
  // The secret is rotated in place: a remembered token is trusted a while
  // longer, then its signature is checked again against the new secret.
  keys.secret!.set(encoder.encode("x"), 0);
  assert.equal((await verifyAccessToken(`Bearer ${jwt}`, keys, later(TRUST_MS - 1))).ok, true);
  assert.deepEqual(await verifyAccessToken(`Bearer ${jwt}`, keys, later(TRUST_MS)), {
    ok: false,
    error: { message: "the JWT's signature is not valid" },
  });
});

Deno.test("remembered claims cannot be changed by a caller", async () => {
  const keys = keysFor(secret);
  const jwt = await token(secret, { exp: seconds(t0) + 3600 });
  const first = await verifyAccessToken(`Bearer ${jwt}`, keys, t0);
  assert.ok(first.ok);
  assert.throws(() => {
    (first.value as { role?: string }).role = "service_role";
  }, TypeError);
  const again = await verifyAccessToken(`Bearer ${jwt}`, keys, t0);
  assert.ok(again.ok);
  assert.equal(again.value.role, "anon");
});

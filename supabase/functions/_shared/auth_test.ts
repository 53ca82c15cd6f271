import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import {
  authorizationOf,
  keysFromEnv,
  principalOf,
  TRUST_MS,
  type VerificationKeys,
  verifyAccessToken,
} from "./auth.ts";

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

// --- keys from the environment a hosted project gives its functions ----------

const envOf = (values: Record<string, string>) => ({ get: (name: string) => values[name] });

async function hostedProject() {
  const signing = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(signing.publicKey)), kid: "key-1", alg: "ES256" };
  const legacySecret = "the-projects-legacy-secret-no-function-sees";
  const anonKey = await new SignJWT({ role: "anon", iss: "supabase" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(seconds(t0))
    .setExpirationTime(seconds(t0) + 10 * 365 * 86_400)
    .sign(encoder.encode(legacySecret));
  const userToken = (claims: Record<string, unknown>, key = signing.privateKey) =>
    new SignJWT({ role: "authenticated", sub: "9b2f0c4e-3c1d-4a51-8a43-1d4c2f9e7a10", ...claims })
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: "key-1" })
      .setIssuedAt(seconds(t0))
      .setExpirationTime(seconds(t0) + 3600)
      .sign(key);
  // What the platform injects: no JWT secret, the JWKS inline, the legacy keys.
  const env = envOf({
    SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co",
    SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }),
    SUPABASE_ANON_KEY: anonKey,
  });
  return { env, anonKey, legacySecret, userToken };
}

Deno.test("hosted: the injected anon key is accepted without the JWT secret", async () => {
  const { env, anonKey } = await hostedProject();
  const result = await verifyAccessToken(`Bearer ${anonKey}`, keysFromEnv(env), t0);
  assert.ok(result.ok);
  assert.deepEqual(principalOf(result.value), { ok: true, value: { kind: "anon" } });
});

Deno.test("hosted: the injected service-role key is a trusted server, a near copy is not", async () => {
  const { legacySecret } = await hostedProject();
  const serviceKey = await new SignJWT({ role: "service_role", iss: "supabase" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(encoder.encode(legacySecret));
  const keys = keysFromEnv(envOf({
    SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co",
    SUPABASE_SERVICE_ROLE_KEY: serviceKey,
  }));
  const result = await verifyAccessToken(`Bearer ${serviceKey}`, keys, t0);
  assert.ok(result.ok);
  assert.deepEqual(principalOf(result.value), { ok: true, value: { kind: "service" } });
  // Same length, one character changed, first, in the middle or last:
  // compared in full, and refused.
  for (const near of nearCopies(serviceKey)) {
    assert.equal((await verifyAccessToken(`Bearer ${near}`, keys, t0)).ok, false, near);
  }
});

/**
 * `key` with one character changed: the first (after `prefix`), the middle
 * one and the last.
 */
function nearCopies(key: string, prefix = ""): string[] {
  assert.ok(key.startsWith(prefix));
  return [prefix.length, Math.floor(key.length / 2), key.length - 1].map((at) =>
    key.slice(0, at) + (key[at] === "A" ? "B" : "A") + key.slice(at + 1)
  );
}

Deno.test("hosted: other HS256 tokens are refused, saying which secret is missing", async () => {
  const { env, anonKey, legacySecret } = await hostedProject();
  const keys = keysFromEnv(env);
  const [header, payload] = anonKey.split(".");
  const raised = `${header}.${btoa(JSON.stringify({ role: "service_role" })).replace(/=+$/, "")}.` +
    anonKey.split(".")[2];
  const userToken = await new SignJWT({ role: "authenticated", sub: crypto.randomUUID() })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(encoder.encode(legacySecret));
  for (const token of [raised, `${header}.${payload}.`, userToken]) {
    const result = await verifyAccessToken(`Bearer ${token}`, keys, t0);
    assert.equal(result.ok, false);
    assert.match((result as { error: { message: string } }).error.message, /set JWT_SECRET/);
  }
});

Deno.test("hosted: an expired injected key is refused", async () => {
  const { env, anonKey } = await hostedProject();
  const result = await verifyAccessToken(
    `Bearer ${anonKey}`,
    keysFromEnv(env),
    later(11 * 365 * 86_400_000),
  );
  assert.deepEqual(result, { ok: false, error: { message: "the JWT has expired" } });
});

Deno.test("hosted: user tokens are checked with the inline JWKS", async () => {
  const { env, userToken } = await hostedProject();
  const keys = keysFromEnv(env);
  const good = await verifyAccessToken(`Bearer ${await userToken({})}`, keys, t0);
  assert.ok(good.ok);
  assert.equal(good.value.role, "authenticated");
  const stranger = await generateKeyPair("ES256");
  assert.deepEqual(
    await verifyAccessToken(`Bearer ${await userToken({}, stranger.privateKey)}`, keys, t0),
    { ok: false, error: { message: "the JWT's signature is not valid" } },
  );
});

Deno.test("with a secret and a JWKS, each token is checked with the key its algorithm names", async () => {
  const { env, userToken } = await hostedProject();
  const both = keysFromEnv(envOf({ JWT_SECRET: secret, SUPABASE_JWKS: env.get("SUPABASE_JWKS")! }));
  assert.ok((await verifyAccessToken(`Bearer ${await token(secret, {})}`, both, t0)).ok);
  assert.ok((await verifyAccessToken(`Bearer ${await userToken({})}`, both, t0)).ok);
  // The secret alone: asymmetric tokens have nothing to be checked with.
  assert.deepEqual(
    await verifyAccessToken(`Bearer ${await userToken({})}`, keysFor(secret), t0),
    { ok: false, error: { message: "the JWT's signing algorithm is not allowed" } },
  );
});

Deno.test("without a secret, a JWKS or a project URL there is nothing to check with", () => {
  assert.throws(() => keysFromEnv(envOf({ SUPABASE_ANON_KEY: "a.b.c" })), /SUPABASE_JWKS/);
});

Deno.test("a token in three parts that is not a JWT is refused, not thrown on", async () => {
  const json = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "");
  for (
    const text of ["foo.bar.baz", `abcd.${json({})}.x`, `${json(null)}.x.y`, `${json([1])}.x.y`]
  ) {
    assert.deepEqual(
      await verifyAccessToken(`Bearer ${text}`, keysFor(secret), t0),
      { ok: false, error: { message: "the JWT is malformed or not valid" } },
      text,
    );
  }
});

Deno.test("a JWKS that cannot be fetched makes the token unverifiable, not invalid", async () => {
  const { userToken } = await hostedProject();
  const bearer = `Bearer ${await userToken({})}`;
  const answers = [
    () => new Response("upstream down", { status: 502 }),
    () => new Response("<html>", { status: 200 }),
    () => Response.json({ keys: "none" }),
  ];
  let answer = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => answers[answer](),
  );
  const errorLog = console.error;
  console.error = () => {};
  try {
    for (; answer < answers.length; answer++) {
      // A fresh set of keys each time: jose keeps a fetched set for a while.
      const keys = keysFromEnv(envOf({ SUPABASE_URL: `http://127.0.0.1:${server.addr.port}` }));
      const result = await verifyAccessToken(bearer, keys, t0);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.error.unavailable, true, `answer ${answer}`);
    }
    await server.shutdown();
    // Nothing listening at all.
    const closed = keysFromEnv(envOf({ SUPABASE_URL: `http://127.0.0.1:${server.addr.port}` }));
    const result = await verifyAccessToken(bearer, closed, t0);
    assert.equal(!result.ok && result.error.unavailable, true, "connection refused");
  } finally {
    console.error = errorLog;
    await server.shutdown().catch(() => {});
  }
});

Deno.test("the bearer scheme is matched whatever its case", async () => {
  const keys = keysFor(secret);
  const jwt = await token(secret, { exp: seconds(t0) + 3600 });
  for (const scheme of ["bearer", "BEARER", "beArer"]) {
    const result = await verifyAccessToken(`${scheme} ${jwt}`, keys, t0);
    assert.equal(result.ok, true, scheme);
  }
  assert.equal((await verifyAccessToken(`Basic ${jwt}`, keys, t0)).ok, false);
});

// What the platform injects on a project with the newer API keys.
const publishable = "sb_publishable_4cnD2yGz1E8mQ7x0aLvKuw_9TqPZ3hR";
const secretKey = "sb_secret_Qx3vN8pLm2Rk7YtW0cJf1A_bH6sDe9gU";
const newKeysEnv = () =>
  envOf({
    SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co",
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: publishable, mobile: `${publishable}2` }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: secretKey }),
  });

async function principalFor(authorization: string, keys: VerificationKeys) {
  const result = await verifyAccessToken(authorization, keys, t0);
  return result.ok ? principalOf(result.value) : result;
}

Deno.test("a publishable key as the bearer tracks anonymously, every named one", async () => {
  const keys = keysFromEnv(newKeysEnv());
  for (const key of [publishable, `${publishable}2`]) {
    assert.deepEqual(await principalFor(`Bearer ${key}`, keys), {
      ok: true,
      value: { kind: "anon" },
    });
  }
});

Deno.test("a secret key as the bearer is a trusted server", async () => {
  assert.deepEqual(await principalFor(`Bearer ${secretKey}`, keysFromEnv(newKeysEnv())), {
    ok: true,
    value: { kind: "service" },
  });
});

Deno.test("an API key that is not the project's, or only nearly, is refused", async () => {
  const keys = keysFromEnv(newKeysEnv());
  const notOurs = "the API key is not one of the project's publishable or secret keys";
  for (
    const key of [
      "sb_publishable_another-projects-key",
      publishable.slice(0, -1),
      `${secretKey}x`,
      "sb_secret_",
      // Same length as a key of the project, one character off anywhere.
      ...nearCopies(publishable, "sb_publishable_"),
      ...nearCopies(secretKey, "sb_secret_"),
    ]
  ) {
    assert.deepEqual(await verifyAccessToken(`Bearer ${key}`, keys, t0), {
      ok: false,
      error: { message: notOurs },
    }, key);
  }
  // Keys only count where the environment names them.
  assert.deepEqual(await verifyAccessToken(`Bearer ${publishable}`, keysFor(secret), t0), {
    ok: false,
    error: { message: notOurs },
  });
});

Deno.test("the single SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY are read too, trimmed", () => {
  const keys = keysFromEnv(envOf({
    SUPABASE_JWT_SECRET: secret,
    SUPABASE_PUBLISHABLE_KEY: ` ${publishable}\r\n`,
    SUPABASE_SECRET_KEY: `${secretKey}\n`,
  }));
  assert.deepEqual(keys.publishableKeys, [publishable]);
  assert.deepEqual(keys.secretKeys, [secretKey]);
});

Deno.test("a key listed under the other kind is not taken for it", () => {
  const keys = keysFromEnv(envOf({
    SUPABASE_JWT_SECRET: secret,
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: secretKey, odd: 42 }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: publishable }),
  }));
  assert.deepEqual(keys.publishableKeys, []);
  assert.deepEqual(keys.secretKeys, []);
});

Deno.test("named keys that are not a JSON object are a configuration error naming the variable", () => {
  for (const value of ["sb_publishable_abc", '["sb_publishable_abc"]', "null"]) {
    assert.throws(
      () => keysFromEnv(envOf({ SUPABASE_JWT_SECRET: secret, SUPABASE_PUBLISHABLE_KEYS: value })),
      /^Error: SUPABASE_PUBLISHABLE_KEYS must be a JSON object of named keys/,
      value,
    );
  }
});

Deno.test("the apikey header counts only without an Authorization header, and only for new keys", () => {
  const headers = (entries: Record<string, string>) => authorizationOf(new Headers(entries));
  assert.equal(headers({ apikey: publishable }), `Bearer ${publishable}`);
  assert.equal(headers({ apikey: ` ${secretKey} ` }), `Bearer ${secretKey}`);
  // A user's token wins over the key that comes along with it.
  assert.equal(
    headers({ authorization: "Bearer user.token.here", apikey: publishable }),
    "Bearer user.token.here",
  );
  // A legacy key is a JWT, expected as the bearer.
  assert.equal(headers({ apikey: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln" }), null);
  assert.equal(headers({}), null);
});

Deno.test("a bearer that is neither a JWT nor an API key says what is expected", async () => {
  for (const authorization of ["Bearer not-a-jwt", "Bearer a b", "Basic YTpi"]) {
    assert.deepEqual(await verifyAccessToken(authorization, keysFor(secret), t0), {
      ok: false,
      error: { message: "the Authorization header must be 'Bearer <jwt>' or 'Bearer <API key>'" },
    }, authorization);
  }
});

/**
 * Security of the track function: tokens that must not pass (algorithm
 * confusion, `alg: none`, asymmetric algorithms the project does not use,
 * expired and not-yet-valid tokens, another project's tokens, tampered
 * claims), a signed-in user trying to write as another user or into
 * another principal's session, and no service-role secret anywhere in the
 * browser client.
 *
 * Every token is sent twice: through the gateway, to the function process
 * the platform would run (`verify_jwt = false` in supabase/config.toml: the
 * function is the one check), and to the handler itself, in this process.
 *
 * Run with the stack up:
 *   set -a; source <(scripts/stack env); set +a
 *   deno test --allow-all supabase/functions/track/security_test.ts
 */
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import {
  createUser,
  freePort,
  integrationTest,
  mintUserJwt,
  sql,
  stack,
  startFunction,
  type TestUser,
  trackUrl,
} from "../../../test_support/stack.ts";
import { handler } from "./handler.ts";

// The handler reads its database and JWT secret from the environment, as in the gateway.
for (
  const [name, value] of [
    ["SUPABASE_JWT_SECRET", stack.jwtSecret],
    ["SUPABASE_DB_URL", stack.dbUrl],
  ]
) {
  if (!Deno.env.get(name)) Deno.env.set(name, value);
}

type Json = Record<string, unknown>;

const encoder = new TextEncoder();
const projectSecret = encoder.encode(stack.jwtSecret);
const base64url = (value: unknown) =>
  btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

/** Each request from its own address, so that the anonymous rate limit never interferes. */
const addressPrefix = `10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`;
let requests = 0;

function headers(token: string | null): Headers {
  const result = new Headers({
    "Content-Type": "application/json",
    "apikey": stack.anonKey,
    "X-Forwarded-For": `${addressPrefix}.${requests++ % 256}`,
  });
  if (token !== null) result.set("Authorization", `Bearer ${token}`);
  return result;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Json;
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) };
}

/** POSTs through the gateway. */
async function viaGateway(body: unknown, token: string | null): Promise<Answer> {
  return await answer(
    await fetch(trackUrl, {
      method: "POST",
      headers: headers(token),
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    }),
  );
}

/** POSTs to the handler itself, in this process. */
async function viaHandler(body: unknown, token: string | null): Promise<Answer> {
  return await answer(
    await handler(
      new Request("http://127.0.0.1/functions/v1/track", {
        method: "POST",
        headers: headers(token),
        body: JSON.stringify(body),
      }),
    ),
  );
}

function view(overrides: Json = {}): Json {
  return {
    eventId: crypto.randomUUID(),
    eventType: "view",
    entityType: "event",
    entityId: "event-123",
    anonymousId: "security-visitor",
    ...overrides,
  };
}

async function storedRows(eventIds: string[]) {
  return [
    ...await sql`
      select event_id::text as event_id, user_id::text as user_id, anonymous_id, session_id::text
        as session_id, entity_id
      from public.user_interactions where event_id = any(${eventIds}::uuid[])
      order by event_id
    `,
  ];
}

async function sessionRow(id: string) {
  const [row] = await sql`
    select user_id::text as user_id, anonymous_id, interaction_count, page_views
    from public.sessions where id = ${id}
  `;
  return row ? { ...row } : undefined;
}

// --- tokens that must not pass ---------------------------------------------------------------

interface RefusedToken {
  what: string;
  token: string;
  /** The function's own message. */
  message: string;
}

async function refusedTokens(userId: string): Promise<RefusedToken[]> {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    role: "authenticated",
    aud: "authenticated",
    sub: userId,
    iss: `${stack.url}/auth/v1`,
    iat: now,
    exp: now + 3600,
  };
  const signHs = (alg: string, key: Uint8Array, payload: Json = claims) =>
    new SignJWT(payload).setProtectedHeader({ alg, typ: "JWT" }).sign(key);
  const rsa = await generateKeyPair("RS256", { extractable: true });
  const ec = await generateKeyPair("ES256", { extractable: true });
  const publicPem = await exportSPKI(rsa.publicKey);
  const publicJwk = await exportJWK(rsa.publicKey);
  const valid = await signHs("HS256", projectSecret);
  const [header, payload, signature] = valid.split(".");
  const otherProject = encoder.encode("another-projects-jwt-secret-of-32-characters");
  const badSignature = "the JWT's signature is not valid";
  const badAlgorithm = "the JWT's signing algorithm is not allowed";
  const malformed = "the JWT is malformed or not valid";
  return [
    { what: "three parts that are not a JWT", token: "foo.bar.baz", message: malformed },
    {
      what: "a header that decodes to JSON null",
      token: `${base64url(null)}.${payload}.${signature}`,
      message: malformed,
    },
    {
      what: "HS256 signed with the RSA public key's PEM as the HMAC secret",
      token: await signHs("HS256", encoder.encode(publicPem)),
      message: badSignature,
    },
    {
      what: "HS256 signed with the RSA public key's JWK as the HMAC secret",
      token: await signHs("HS256", encoder.encode(JSON.stringify(publicJwk))),
      message: badSignature,
    },
    {
      what: "alg none, unsigned",
      token: `${base64url({ alg: "none", typ: "JWT" })}.${base64url(claims)}.`,
      message: badAlgorithm,
    },
    {
      what: "alg None, unsigned",
      token: `${base64url({ alg: "None", typ: "JWT" })}.${base64url(claims)}.`,
      message: badAlgorithm,
    },
    {
      what: "RS256, when only HS256 is accepted",
      token: await new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT" })
        .sign(rsa.privateKey),
      message: badAlgorithm,
    },
    {
      what: "RS256 carrying its own public key in the header (jwk)",
      token: await new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", typ: "JWT", jwk: publicJwk })
        .sign(rsa.privateKey),
      message: badAlgorithm,
    },
    {
      what: "ES256",
      token: await new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: "JWT" })
        .sign(ec.privateKey),
      message: badAlgorithm,
    },
    {
      what: "HS512 with the project's own secret",
      token: await signHs("HS512", projectSecret),
      message: badAlgorithm,
    },
    {
      what: "expired two minutes ago",
      token: await signHs("HS256", projectSecret, { ...claims, exp: now - 120 }),
      message: "the JWT has expired",
    },
    {
      what: "not valid for two more minutes (nbf)",
      token: await signHs("HS256", projectSecret, { ...claims, nbf: now + 120 }),
      message: "the JWT's nbf claim is not valid",
    },
    {
      what: "another project's token (its issuer, its secret)",
      token: await signHs("HS256", otherProject, {
        ...claims,
        iss: "https://abcdefghijklmnopqrst.supabase.co/auth/v1",
        ref: "abcdefghijklmnopqrst",
      }),
      message: badSignature,
    },
    {
      what: "another project's service-role key",
      token: await signHs("HS256", otherProject, {
        iss: "supabase",
        ref: "abcdefghijklmnopqrst",
        role: "service_role",
        iat: now,
        exp: now + 3600,
      }),
      message: badSignature,
    },
    {
      what: "a valid token whose sub was swapped for another user's",
      token: `${header}.${base64url({ ...claims, sub: crypto.randomUUID() })}.${signature}`,
      message: badSignature,
    },
    {
      what: "a valid token whose role was raised to service_role",
      token: `${header}.${base64url({ ...claims, role: "service_role" })}.${signature}`,
      message: badSignature,
    },
    {
      what: "a valid token with its signature stripped",
      token: `${header}.${payload}.`,
      message: badSignature,
    },
  ];
}

integrationTest(
  "tokens forged by algorithm confusion, alg none, other keys, or out of their time are refused 401 and store nothing",
  async () => {
    const user = await createUser();
    const tokens = await refusedTokens(user.id);
    const sent: string[] = [];
    for (const { what, token, message } of tokens) {
      const gatewayEvent = view();
      const handlerEvent = view();
      sent.push(gatewayEvent.eventId as string, handlerEvent.eventId as string);

      for (
        const [where, sent] of [
          ["gateway", await viaGateway(gatewayEvent, token)],
          ["handler", await viaHandler(handlerEvent, token)],
        ] as const
      ) {
        assert.equal(sent.status, 401, `${where}, ${what}`);
        assert.equal(sent.headers.get("access-control-allow-origin"), "*", `${where}, ${what}`);
        assert.equal(
          sent.headers.get("www-authenticate"),
          'Bearer error="invalid_token"',
          `${where}, ${what}`,
        );
        assert.deepEqual(
          sent.body,
          { error: { code: "unauthorized", message } },
          `${where}, ${what}`,
        );
      }
    }
    assert.deepEqual(await storedRows(sent), [], "no refused token stored anything");
  },
);

integrationTest(
  "validly signed tokens for roles the function does not serve, or without a user id, are refused 401 by the function",
  async () => {
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Json) =>
      new SignJWT({ iat: now, exp: now + 3600, ...claims })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .sign(projectSecret);
    const cases: Array<[string, string, string]> = [
      [
        "role supabase_admin",
        await sign({ role: "supabase_admin", sub: crypto.randomUUID() }),
        "the JWT's role is not one this function serves",
      ],
      [
        "role postgres",
        await sign({ role: "postgres" }),
        "the JWT's role is not one this function serves",
      ],
      [
        "no role",
        await sign({ sub: crypto.randomUUID() }),
        "the JWT's role is not one this function serves",
      ],
      [
        "authenticated without sub",
        await sign({ role: "authenticated" }),
        "a user token must carry the user's id in 'sub'",
      ],
      [
        "authenticated with SQL for a sub",
        await sign({ role: "authenticated", sub: "' or '1'='1" }),
        "a user token must carry the user's id in 'sub'",
      ],
    ];
    const sent: string[] = [];
    for (const [what, token, message] of cases) {
      for (const send of [viaGateway, viaHandler]) {
        const event = view();
        sent.push(event.eventId as string);
        const response = await send(event, token);
        assert.equal(response.status, 401, `${send.name}, ${what}`);
        assert.deepEqual(
          response.body,
          { error: { code: "unauthorized", message } },
          `${send.name}, ${what}`,
        );
      }
    }
    assert.deepEqual(await storedRows(sent), []);
  },
);

integrationTest(
  "a validly signed token for a user who does not exist stores nothing and says why",
  async () => {
    const ghost = crypto.randomUUID();
    const event = view({ eventType: "like" });
    const response = await viaGateway(event, await mintUserJwt(ghost));
    assert.equal(response.status, 400);
    assert.deepEqual(response.body, {
      accepted: 0,
      duplicates: 0,
      rejected: [{
        index: 0,
        eventId: event.eventId,
        errors: [{ path: "", message: "unknown user: the signed-in user does not exist" }],
      }],
    });
    assert.deepEqual(await storedRows([event.eventId as string]), []);
  },
);

// --- one principal writing as another --------------------------------------------------------

integrationTest(
  "a user_id in the body is ignored: events are stored for the token's user, or for nobody",
  async () => {
    const [alice, bob] = [await createUser(), await createUser()];
    const impersonation = { user_id: bob.id, userId: bob.id, user: { id: bob.id }, sub: bob.id };
    const asAlice = view({ eventType: "like", ...impersonation });
    const asAnon = view(impersonation);
    const asService = view(impersonation);
    assert.equal((await viaGateway(asAlice, alice.token)).status, 200);
    assert.equal((await viaGateway(asAnon, stack.anonKey)).status, 200);
    assert.equal((await viaGateway(asService, stack.serviceRoleKey)).status, 200);
    const rows = await storedRows([asAlice, asAnon, asService].map((e) => e.eventId as string));
    const ownerOf = new Map(rows.map((row) => [row.event_id, row.user_id]));
    assert.equal(ownerOf.get(asAlice.eventId as string), alice.id);
    assert.equal(ownerOf.get(asAnon.eventId as string), null);
    assert.equal(ownerOf.get(asService.eventId as string), null);
    const [{ count }] = await sql`
      select count(*)::integer as count from public.user_interactions where user_id = ${bob.id}
    `;
    assert.equal(count, 0, "nothing was stored for the impersonated user");
  },
);

integrationTest(
  "a signed-in user cannot add events to another user's or a visitor's session",
  async () => {
    const [alice, bob] = [await createUser(), await createUser()];
    const aliceSession = crypto.randomUUID();
    const visitorSession = crypto.randomUUID();
    const opening = view({ sessionId: aliceSession });
    assert.equal((await viaGateway(opening, alice.token)).status, 200);
    const visit = view({ sessionId: visitorSession, anonymousId: "security-visitor-1" });
    assert.equal((await viaGateway(visit, stack.anonKey)).status, 200);

    const refused = (index: number, eventId: unknown) => ({
      index,
      eventId,
      errors: [{ path: "sessionId", message: "session belongs to another principal" }],
    });
    const attempts: Array<[string, Json, string]> = [
      ["bob on alice's session", view({ sessionId: aliceSession }), bob.token],
      ["bob on the visitor's session", view({ sessionId: visitorSession }), bob.token],
      [
        "another visitor on alice's session",
        view({ sessionId: aliceSession, anonymousId: "security-visitor-2" }),
        stack.anonKey,
      ],
      [
        "another visitor on the visitor's session",
        view({ sessionId: visitorSession, anonymousId: "security-visitor-2" }),
        stack.anonKey,
      ],
      [
        "the service role on alice's session, as alice's own visitor id",
        view({ sessionId: aliceSession, anonymousId: "security-visitor" }),
        stack.serviceRoleKey,
      ],
      ["alice on the visitor's session", view({ sessionId: visitorSession }), alice.token],
    ];
    for (const [what, event, token] of attempts) {
      const response = await viaGateway(event, token);
      assert.equal(response.status, 400, what);
      assert.deepEqual(
        response.body,
        { accepted: 0, duplicates: 0, rejected: [refused(0, event.eventId)] },
        what,
      );
    }
    // In a batch, the foreign event is refused and the caller's own is stored.
    const own = view();
    const foreign = view({ sessionId: aliceSession });
    const batch = await viaGateway({ events: [own, foreign] }, bob.token);
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body, {
      accepted: 1,
      duplicates: 0,
      rejected: [refused(1, foreign.eventId)],
    });

    const sent = [
      ...attempts.map(([, event]) => event.eventId as string),
      foreign.eventId as string,
    ];
    assert.deepEqual(await storedRows(sent), [], "no foreign event was stored");
    assert.deepEqual(await sessionRow(aliceSession), {
      user_id: alice.id,
      anonymous_id: null,
      interaction_count: 1,
      page_views: 1,
    });
    assert.deepEqual(await sessionRow(visitorSession), {
      user_id: null,
      anonymous_id: "security-visitor-1",
      interaction_count: 1,
      page_views: 1,
    });
  },
);

integrationTest(
  "another principal resending a stored eventId changes nothing: it is a duplicate of the first",
  async () => {
    const [alice, bob]: TestUser[] = [await createUser(), await createUser()];
    const original = view({ entityId: "alice-entity" });
    assert.equal((await viaGateway(original, alice.token)).status, 200);
    for (const [who, token] of [["bob", bob.token], ["anon", stack.anonKey]]) {
      const copy = { ...original, entityId: `${who}-entity`, eventType: "click" };
      const response = await viaGateway(copy, token);
      assert.equal(response.status, 200, who);
      assert.deepEqual(response.body, { accepted: 0, duplicates: 1, rejected: [] }, who);
    }
    assert.deepEqual(await storedRows([original.eventId as string]), [{
      event_id: original.eventId,
      user_id: alice.id,
      anonymous_id: "security-visitor",
      session_id: null,
      entity_id: "alice-entity",
    }]);
  },
);

// --- the browser holds no secret -------------------------------------------------------------

const clientDir = new URL("../../../client/", import.meta.url);

async function* filesUnder(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name === "node_modules") continue;
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* filesUnder(url);
    else if (entry.isFile) yield url;
  }
}

/** The text of a client file a browser may load: for a source map, only the project's own sources. */
async function browserText(file: URL): Promise<string> {
  const text = await Deno.readTextFile(file);
  if (!file.pathname.endsWith(".map")) return text;
  const map = JSON.parse(text) as { sources: string[]; sourcesContent?: string[] };
  // Third-party sources (supabase-js documents the service_role key) are left out.
  return map.sources
    .map((source, i) =>
      source.includes("/node_modules/") || source.includes("registry.npmjs.org")
        ? ""
        : map.sourcesContent?.[i] ?? ""
    )
    .join("\n");
}

integrationTest(
  "nothing in the browser client holds or names the service-role key or the JWT secret",
  async () => {
    // Built afresh: a bundle left from older sources would be checked instead.
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", fileURLToPath(new URL("build.ts", clientDir))],
      stdout: "null",
      stderr: "inherit",
    }).output();
    assert.ok(build.success, "client/build.ts builds the bundle");
    const checked: string[] = [];
    for (const dir of ["src/", "dist/"]) {
      for await (const file of filesUnder(new URL(dir, clientDir))) {
        const path = file.pathname.slice(clientDir.pathname.length);
        const raw = await Deno.readTextFile(file);
        assert.ok(!raw.includes(stack.serviceRoleKey), `${path} holds the service-role key`);
        assert.ok(!raw.includes(stack.jwtSecret), `${path} holds the JWT secret`);
        // The test page's copy of supabase-js is a third-party library, not the client.
        if (path.startsWith("dist/test/")) continue;
        const text = await browserText(file);
        for (const word of ["service_role", "SERVICE_ROLE", "serviceRole", "JWT_SECRET"]) {
          assert.ok(!text.includes(word), `${path} names ${word}`);
        }
        checked.push(path);
      }
    }
    assert.ok(checked.includes("dist/interaction-tracking.min.js"), "the bundle was checked");
    assert.ok(checked.includes("src/mod.ts"), "the sources were checked");
  },
);

integrationTest(
  "a project whose signing keys cannot be fetched answers 503 with Retry-After, so clients keep their events",
  async () => {
    // As on a hosted project with asymmetric keys: no JWT secret, the JWKS
    // fetched from the project's URL, here a port nothing listens on.
    const instance = await startFunction("track", {
      SUPABASE_JWT_SECRET: "",
      SUPABASE_URL: `http://127.0.0.1:${freePort()}`,
    });
    try {
      const user = await createUser();
      const signing = await generateKeyPair("ES256");
      const token = await new SignJWT({ role: "authenticated", sub: user.id })
        .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: "key-1" })
        .setExpirationTime("1h")
        .sign(signing.privateKey);
      const event = view();
      const response = await fetch(instance.url, {
        method: "POST",
        headers: headers(token),
        body: JSON.stringify(event),
      });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "5");
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.deepEqual(await response.json(), {
        error: {
          code: "auth_unavailable",
          message: "the project's signing keys cannot be read now; retry later",
        },
      });
      assert.deepEqual(await storedRows([event.eventId as string]), []);
    } finally {
      await instance.stop();
    }
    assert.match(instance.log(), /the JWKS could not be read/);
  },
);

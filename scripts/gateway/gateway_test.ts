/**
 * The local gateway's own rules, on a project of two small functions: with
 * `verify_jwt = true` (the default) it refuses a request without a valid JWT
 * before the function sees it, in the platform's `{ code, message }` shape,
 * except a CORS preflight; with `verify_jwt = false` everything reaches the
 * function. The track function itself runs with `verify_jwt = false` and
 * checks tokens on its own (see supabase/functions/track/security_test.ts).
 *
 * The gateway runs from a copy of its sources in a temporary project, on
 * loopback ports it picks, and is stopped at the end.
 */
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { freePort, mintUserJwt, stack } from "../../test_support/stack.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const mayRun = Deno.permissions.querySync({ name: "run" }).state === "granted";

/** Answers with what reached it, so a test can tell the gateway's answers from its own. */
const echoFunction = `
Deno.serve((request) =>
  Response.json({
    reached: true,
    method: request.method,
    authorization: request.headers.get("authorization"),
  })
);
`;

/** Answers with the X-Forwarded-For that reached it. */
const forwardedFunction = `
Deno.serve((request) => Response.json({ forwardedFor: request.headers.get("x-forwarded-for") }));
`;

async function makeProject(): Promise<string> {
  const project = await Deno.makeTempDir({ prefix: "gateway-" });
  for (const dir of ["scripts/gateway", "supabase/functions/_shared"]) {
    await Deno.mkdir(`${project}/${dir}`, { recursive: true });
  }
  for (const file of ["scripts/gateway/main.ts", "scripts/gateway/worker.ts"]) {
    await Deno.copyFile(`${root}${file}`, `${project}/${file}`);
  }
  for (const file of ["jwt.ts", "local_host.ts"]) {
    await Deno.copyFile(`${root}scripts/gateway/${file}`, `${project}/scripts/gateway/${file}`);
  }
  for (const file of ["auth.ts", "cors.ts"]) {
    await Deno.copyFile(
      `${root}supabase/functions/_shared/${file}`,
      `${project}/supabase/functions/_shared/${file}`,
    );
  }
  for (const file of ["deno.json", "deno.lock"]) {
    await Deno.copyFile(`${root}${file}`, `${project}/${file}`);
  }
  for (const name of ["guarded", "open"]) {
    await Deno.mkdir(`${project}/supabase/functions/${name}`);
    await Deno.writeTextFile(`${project}/supabase/functions/${name}/index.ts`, echoFunction);
  }
  await Deno.mkdir(`${project}/supabase/functions/forwarded`);
  await Deno.writeTextFile(`${project}/supabase/functions/forwarded/index.ts`, forwardedFunction);
  // `guarded` says nothing, so it gets the default, as on the platform.
  await Deno.writeTextFile(
    `${project}/supabase/config.toml`,
    "[functions.open]\nverify_jwt = false\n\n[functions.forwarded]\nverify_jwt = false\n",
  );
  return project;
}

/** A free port whose function port (the port + 100) is free too. */
function gatewayPort(): number {
  for (;;) {
    const port = freePort();
    try {
      Deno.listen({ hostname: "127.0.0.1", port: port + 100 }).close();
      return port;
    } catch { /* taken: another */ }
  }
}

async function waitUntilUp(url: string, gateway: Deno.ChildProcess): Promise<void> {
  let exited = false;
  gateway.status.then(() => exited = true);
  for (let attempt = 0; attempt < 300 && !exited; attempt++) {
    try {
      const response = await fetch(`${url}/functions/v1/_health`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the gateway did not start");
}

/** A GET with the Host header given, as no fetch() lets a caller set it: the status and body. */
async function rawGet(
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
  );
  const text = await new Response(conn.readable).text();
  const [head, ...rest] = text.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), body: rest.join("\r\n\r\n") };
}

Deno.test({
  name: "gateway: verify_jwt refuses a missing or bad JWT before the function, but not a preflight",
  ignore: !mayRun,
  fn: async () => {
    const project = await makeProject();
    const port = gatewayPort();
    const url = `http://127.0.0.1:${port}`;
    const gateway = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", `${project}/scripts/gateway/main.ts`],
      cwd: project,
      env: {
        GATEWAY_PORT: String(port),
        SUPABASE_URL: url,
        SUPABASE_ANON_KEY: stack.anonKey,
        SUPABASE_SERVICE_ROLE_KEY: stack.serviceRoleKey,
        SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:1/postgres",
        SUPABASE_JWT_SECRET: stack.jwtSecret,
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const reading = (async () => {
      for await (const text of gateway.stderr.pipeThrough(new TextDecoderStream())) log += text;
    })();
    try {
      await waitUntilUp(url, gateway);
      const call = async (name: string, authorization: string | null, method = "POST") => {
        const headers = new Headers();
        if (authorization !== null) headers.set("Authorization", authorization);
        const response = await fetch(`${url}/functions/v1/${name}`, { method, headers });
        return {
          status: response.status,
          cors: response.headers.get("access-control-allow-origin"),
          body: await response.json(),
        };
      };
      const expired = await mintUserJwt(crypto.randomUUID(), { expiresIn: -60 });
      const forged = await new SignJWT({ role: "anon" })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .sign(new TextEncoder().encode("another-projects-secret-of-32-characters!"));
      const refused: Array<[string, string | null, string]> = [
        ["missing", null, "missing Authorization header"],
        [
          "not a bearer",
          "Basic YTpi",
          "the Authorization header must be 'Bearer <jwt>' or 'Bearer <API key>'",
        ],
        [
          "a publishable key",
          `Bearer ${stack.publishableKey}`,
          "the Authorization header must be 'Bearer <jwt>': an API key is not a JWT",
        ],
        ["three parts, not a JWT", "Bearer foo.bar.baz", "the JWT is malformed or not valid"],
        ["expired", `Bearer ${expired}`, "the JWT has expired"],
        ["signed with another secret", `Bearer ${forged}`, "the JWT's signature is not valid"],
      ];
      for (const [what, authorization, message] of refused) {
        const answer = await call("guarded", authorization);
        assert.equal(answer.status, 401, what);
        assert.equal(answer.cors, "*", what);
        assert.deepEqual(answer.body, { code: 401, message }, what);
      }

      const user = await mintUserJwt(crypto.randomUUID());
      for (const token of [stack.anonKey, user]) {
        const answer = await call("guarded", `Bearer ${token}`);
        assert.equal(answer.status, 200);
        assert.deepEqual(answer.body, {
          reached: true,
          method: "POST",
          authorization: `Bearer ${token}`,
        });
      }
      const preflight = await call("guarded", null, "OPTIONS");
      assert.deepEqual(preflight.body, { reached: true, method: "OPTIONS", authorization: null });

      for (const [, authorization] of refused) {
        const answer = await call("open", authorization);
        assert.equal(answer.status, 200, `open, ${authorization}`);
        assert.deepEqual(answer.body, { reached: true, method: "POST", authorization });
      }

      // DNS rebinding: a page of another site whose name now points to
      // 127.0.0.1 sends its own name as the Host.
      for (
        const [host, status] of [
          [`evil.example:${port}`, 403],
          [`127.0.0.1.evil.example:${port}`, 403],
          ["evil.example", 403],
          [`localhost:${port}`, 200],
          [`127.0.0.1:${port}`, 200],
          // A local proxy in front of the gateway keeps its own port in the Host.
          ["127.0.0.1:8080", 200],
          ["[::1]", 200],
          ["LOCALHOST.", 200],
        ] as const
      ) {
        for (const path of ["/functions/v1/open", "/dashboard/"]) {
          const answer = await rawGet(port, host, path);
          if (status === 403) {
            assert.equal(answer.status, 403, `${host} ${path}`);
            assert.deepEqual(JSON.parse(answer.body), {
              code: 403,
              message: `the Host "${host}" is not this gateway's: use http://127.0.0.1:${port}`,
            });
          } else {
            assert.notEqual(answer.status, 403, `${host} ${path}`);
          }
        }
      }

      // The caller's address reaches the function as the platform's edge
      // names it: what the caller claims in X-Forwarded-For is replaced.
      const claimed = await fetch(`${url}/functions/v1/forwarded`, {
        method: "POST",
        headers: { "X-Forwarded-For": "203.0.113.9, 10.0.0.1" },
      });
      assert.deepEqual(await claimed.json(), { forwardedFor: "127.0.0.1" });

      // The function processes, reachable on their own ports, refuse it too.
      const direct = await rawGet(port + 100, `evil.example:${port + 100}`, "/");
      assert.equal(direct.status, 403);
      assert.notEqual((await rawGet(port + 100, `127.0.0.1:${port + 100}`, "/")).status, 403);

      const unknown = await call("missing-function", `Bearer ${stack.anonKey}`);
      assert.deepEqual(unknown, {
        status: 404,
        cors: "*",
        body: { code: 404, message: "function missing-function not found" },
      });
    } finally {
      gateway.kill("SIGTERM");
      await gateway.status;
      await reading.catch(() => {});
      await Deno.remove(project, { recursive: true });
    }
    assert.doesNotMatch(log, /exited/, "no function process died");
  },
});

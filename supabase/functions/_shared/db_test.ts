/**
 * The database client when Postgres stops answering: a server that accepts
 * connections and then says nothing more, as a primary that vanished without
 * closing its sockets, or a pooler that lost its upstream. A call that finds
 * no free connection gives up waiting, unsent; past the deadline every sent
 * call fails with a 503's reason (that the events may have been stored), and
 * later calls open new connections instead of queueing behind the silent
 * ones for good.
 *
 * The client runs in a process of its own (db.ts keeps one client per
 * process), against a fake server on a loopback port.
 */
import assert from "node:assert/strict";

const PROTOCOL_3 = 196_608;
const CANCEL_REQUEST = 80_877_102;

/** A Postgres that completes the startup of every connection, then never answers again. */
function silentPostgres() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = { sessions: 0, closedByClient: 0, cancelRequests: 0 };
  const connections: Deno.Conn[] = [];
  const serve = async (conn: Deno.Conn) => {
    connections.push(conn);
    const buffer = new Uint8Array(64 * 1024);
    let length = 0;
    while (length < 8) {
      const n = await conn.read(buffer.subarray(length));
      if (n === null) return;
      length += n;
    }
    const code = new DataView(buffer.buffer).getInt32(4);
    if (code === CANCEL_REQUEST) {
      seen.cancelRequests++;
      return;
    }
    assert.equal(code, PROTOCOL_3);
    seen.sessions++;
    // AuthenticationOk, then ReadyForQuery (idle): whatever comes next waits.
    await conn.write(new Uint8Array([82, 0, 0, 0, 8, 0, 0, 0, 0, 90, 0, 0, 0, 5, 73]));
    while (await conn.read(buffer) !== null) { /* silent */ }
    seen.closedByClient++;
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn).catch(() => {});
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    seen,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
      await accepting.catch(() => {});
    },
  };
}

/**
 * Nine calls at once, one more than the pool holds, then a tenth once they
 * have failed.
 */
const client = `
  const { ingestInteractions } = await import(${JSON.stringify(import.meta.resolve("./db.ts"))});
  const call = () =>
    ingestInteractions({ userId: null, events: [], rejected: [], context: {} }).then(
      () => "stored",
      (error) => ({
        name: error.name,
        reason: error.reason,
        situation: error.situation,
        maybeStored: error.maybeStored,
        message: error.message.replace(/ \\(.*/, ""),
      }),
    );
  const first = await Promise.all(Array.from({ length: 9 }, call));
  const tenth = await call();
  console.log(JSON.stringify({ first, tenth }));
  // postgres.js keeps a timer per connection it made (max_lifetime), even once closed.
  Deno.exit(0);
`;

Deno.test({
  name: "db: a silent database fails each call at the deadline, and frees the pool for the next",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  fn: async () => {
    const server = silentPostgres();
    try {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", client],
        env: {
          SUPABASE_DB_URL: `postgresql://postgres:postgres@127.0.0.1:${server.port}/postgres`,
          // Long enough for eight connections to open on a busy machine: they must
          // all be taken before the ninth call gives up waiting for one.
          TRACK_DB_STATEMENT_TIMEOUT_MS: "500",
        },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `the client process failed:\n${new TextDecoder().decode(stderr)}`);
      const { first, tenth } = JSON.parse(text);
      const unanswered = {
        name: "DatabaseError",
        reason: "unavailable",
        situation: "no_answer",
        maybeStored: true,
        message: "no answer from the database in time",
      };
      // The ninth found no free connection: it was taken out of the queue,
      // unsent, and says so; the eight sent ones may have been stored.
      const unsent = {
        name: "DatabaseError",
        reason: "unavailable",
        situation: "busy",
        maybeStored: false,
        message: "no database connection was free in time",
      };
      assert.deepEqual(
        [...first].sort((a, b) => Number(a.maybeStored) - Number(b.maybeStored)),
        [unsent, ...Array(8).fill(unanswered)],
      );
      assert.deepEqual(tenth, unanswered);
      // The tenth call had a connection of its own: the pool was not left to
      // the eight silent ones, which the client closed.
      assert.equal(server.seen.sessions, 9);
      assert.ok(server.seen.closedByClient >= 8, `closed: ${server.seen.closedByClient}`);
      assert.equal(
        server.seen.cancelRequests,
        0,
        "no cancel connection, whose failure nobody catches",
      );
    } finally {
      await server.close();
    }
  },
});

/** A Postgres that refuses every connection at startup with an error of SQLSTATE `code`. */
function refusingPostgres(code: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const encoder = new TextEncoder();
  const fields = encoder.encode(`SFATAL\0C${code}\0Mrefused for the test\0\0`);
  const message = new Uint8Array(5 + fields.length);
  message[0] = 69; // 'E': ErrorResponse
  new DataView(message.buffer).setInt32(1, 4 + fields.length);
  message.set(fields, 5);
  const accepting = (async () => {
    for await (const conn of listener) {
      (async () => {
        await conn.read(new Uint8Array(64 * 1024));
        await conn.write(message);
        conn.close();
      })().catch(() => {});
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await accepting.catch(() => {});
    },
  };
}

const refusedClient = `
  const { ingestInteractions } = await import(${JSON.stringify(import.meta.resolve("./db.ts"))});
  const outcome = await ingestInteractions({ userId: null, events: [], rejected: [], context: {} })
    .then(() => "stored", (error) => ({
      name: error.name,
      reason: error.reason,
      situation: error.situation,
      maybeStored: error.maybeStored,
    }));
  console.log(JSON.stringify(outcome));
  Deno.exit(0);
`;

Deno.test({
  name: "db: a refusal says what kept Postgres from the call, by its SQLSTATE",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  fn: async () => {
    const cases = [
      { code: "53300", reason: "unavailable", situation: "busy" }, // too many connections
      { code: "57P03", reason: "unavailable", situation: "unreachable" }, // starting up
      { code: "08006", reason: "unavailable", situation: "unreachable" },
      { code: "25006", reason: "unavailable", situation: "read_only" },
      { code: "28P01", reason: "failed", situation: "failed" }, // wrong password
    ];
    for (const { code, reason, situation } of cases) {
      const server = refusingPostgres(code);
      try {
        const { stdout, stderr } = await new Deno.Command(Deno.execPath(), {
          args: ["eval", refusedClient],
          env: {
            SUPABASE_DB_URL: `postgresql://postgres:postgres@127.0.0.1:${server.port}/postgres`,
          },
          stdin: "null",
        }).output();
        const text = new TextDecoder().decode(stdout);
        assert.ok(text !== "", `the client process failed:\n${new TextDecoder().decode(stderr)}`);
        assert.deepEqual(
          JSON.parse(text),
          { name: "DatabaseError", reason, situation, maybeStored: false },
          `SQLSTATE ${code}`,
        );
      } finally {
        await server.close();
      }
    }
  },
});

/** Calls with each of these statement timeouts in turn; the error each one meets. */
const withTimeouts = (values: string[]) => `
  const { ingestInteractions } = await import(${JSON.stringify(import.meta.resolve("./db.ts"))});
  const messages = [];
  for (const value of ${JSON.stringify(values)}) {
    Deno.env.set("TRACK_DB_STATEMENT_TIMEOUT_MS", value);
    messages.push(await ingestInteractions({ userId: null, events: [], rejected: [], context: {} })
      .then(() => "stored", (error) => error.message));
  }
  console.log(JSON.stringify(messages));
  Deno.exit(0);
`;

Deno.test({
  name: "db: a statement timeout that is not 1 ms or more is refused, 0 (no timeout) too",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  fn: async () => {
    const values = ["0", "-5", "1.5", "10s", "abc"];
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", withTimeouts(values)],
      // Never reached: the setting is checked before connecting.
      env: { SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:9/postgres" },
      stdin: "null",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.deepEqual(
      JSON.parse(new TextDecoder().decode(stdout)),
      values.map((value) =>
        `TRACK_DB_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds, 1 or more, not "${value}"`
      ),
    );
  },
});

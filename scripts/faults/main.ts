/**
 * A fault-injection run against a named local stack (see `scripts/chaos`):
 * simulated visitors track events through the real browser client while,
 * one after another, Postgres is restarted (fast and immediate shutdown), the
 * functions gateway and its worker are killed, connections are cut in the
 * middle of requests between the function and Postgres and between the
 * client and the gateway, and Postgres is frozen with SIGSTOP. Then the
 * clients' queues are drained and the database checked (see `verify.ts`).
 *
 * The layout on loopback, for a stack whose database listens on D and whose
 * gateway listens on G:
 *
 * ```
 * visitors --HTTP--> proxy G+10 --> gateway G --> worker G+100 --> proxy D+10 --> Postgres D
 * ```
 *
 * The gateway is started here, with `SUPABASE_DB_URL` pointing at the
 * Postgres proxy, and its pid written where `scripts/stack down` finds it.
 * Every wait is bounded, and the run stops everything it started, also when
 * interrupted.
 *
 * Usage: deno run --allow-all scripts/faults/main.ts --stack-dir DIR --pgdata DIR
 *   --db-port D --api-port G [--short] [--seed N] [--report FILE]
 * with SUPABASE_* of the stack in the environment (`scripts/stack env`).
 * Exits 0 when nothing was lost or duplicated and every check held, 1 when a
 * check failed, 2 when the run itself could not be carried out.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { SignJWT } from "jose";
import { FaultProxy } from "./tcp_proxy.ts";
import { alive, Gateway, PostgresCluster } from "./processes.ts";
import { callDeadlineMs } from "../../supabase/functions/_shared/db.ts";
import { type CreatedEvent, Recorder, sleep, Visitor, type VisitorUser } from "./load.ts";
import {
  type AnswerFigures,
  checkSessions,
  checkStorage,
  noAnswers,
  type SessionFigures,
  type StorageFigures,
  type StoringAttempts,
  storingAttempts,
  summarizeAnswers,
} from "./verify.ts";

/** Time for the gateway and the client on top of the function's deadline. */
const TRANSPORT_MARGIN_MS = 3_000;
/** A request still unanswered after this long is abandoned and counted as hung. */
const HANG_AFTER_MS = 30_000;

interface Options {
  stackDir: string;
  pgdata: string;
  dbPort: number;
  apiPort: number;
  short: boolean;
  seed: number;
  report: string | null;
}

function parseOptions(args: string[]): Options {
  const value = (name: string): string | undefined => {
    const at = args.indexOf(name);
    return at === -1 ? undefined : args[at + 1];
  };
  const required = (name: string): string => {
    const found = value(name);
    if (found === undefined) throw new Error(`missing ${name}`);
    return found;
  };
  return {
    stackDir: required("--stack-dir"),
    pgdata: required("--pgdata"),
    dbPort: Number(required("--db-port")),
    apiPort: Number(required("--api-port")),
    short: args.includes("--short"),
    seed: Number(value("--seed") ?? Math.floor(Math.random() * 2 ** 31)),
    report: value("--report") ?? null,
  };
}

/** A small seeded generator, so that a run's event mix can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function env(name: string): string {
  const found = Deno.env.get(name);
  if (!found) throw new Error(`${name} is not set (source scripts/stack env)`);
  return found;
}

/** What a fault can act on. */
interface Rig {
  recorder: Recorder;
  postgres: PostgresCluster;
  gateway: Gateway;
  dbProxy: FaultProxy;
  httpProxy: FaultProxy;
}

/** A fault's own check failed: the run goes on, and fails at the end. */
class FaultCheckFailed extends Error {}

/** One fault: it strikes, holds, and ends; it answers what happened, in a phrase. */
interface Fault {
  name: string;
  inject(rig: Rig): Promise<string>;
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

const faults = {
  none: (ms: number): Fault => ({
    name: "no fault",
    inject: async () => {
      await sleep(ms);
      return `${ms} ms of normal load`;
    },
  }),
  postgresRestart: (mode: "fast" | "immediate", downMs: number): Fault => ({
    name: `Postgres ${mode} shutdown, restart`,
    inject: async ({ postgres }) => {
      await postgres.stop(mode);
      await sleep(downMs);
      const started = Date.now();
      await postgres.start();
      return `down ${downMs} ms, then up in ${Date.now() - started} ms`;
    },
  }),
  gatewayKilled: (downMs: number): Fault => ({
    name: "gateway and workers SIGKILLed, restarted",
    inject: async ({ gateway }) => {
      await gateway.kill("group");
      await sleep(downMs);
      const started = Date.now();
      await gateway.start();
      return `down ${downMs} ms, then up in ${Date.now() - started} ms`;
    },
  }),
  gatewayProcessKilled: (downMs: number): Fault => ({
    name: "gateway process alone SIGKILLed, restarted",
    inject: async ({ gateway }) => {
      const orphans = gateway.workerPids();
      await gateway.kill("gateway");
      await sleep(downMs);
      await gateway.start();
      // Watch the new gateway's own workers for two seconds.
      const seen = new Set<number>();
      const watchUntil = Date.now() + 2_000;
      while (Date.now() < watchUntil) {
        for (const pid of gateway.workerPids()) seen.add(pid);
        await sleep(20);
      }
      const left = orphans.filter(alive);
      return `its worker ${orphans.join(", ")} ${
        left.length > 0 ? "kept running and serving" : "exited with it"
      }; the new gateway started ${seen.size} worker process(es) in 2 s${
        seen.size > 1 ? " (each exited: the port is taken)" : ""
      }`;
    },
  }),
  workerKilled: (): Fault => ({
    name: "function worker SIGKILLed",
    inject: async ({ gateway }) => {
      const killed = gateway.workerPids();
      for (const pid of killed) Deno.kill(pid, "SIGKILL");
      const started = Date.now();
      const back = await until(
        () => gateway.workerPids().some((pid) => !killed.includes(pid)),
        10_000,
      );
      return back
        ? `worker ${killed.join(", ")} killed; the gateway started another in ${
          Date.now() - started
        } ms`
        : `worker ${killed.join(", ")} killed; the gateway did not start another in 10 s`;
    },
  }),
  databaseAnswersLost: (n: number): Fault => ({
    name: "function<->Postgres: answers lost after commit",
    inject: async ({ dbProxy }) => {
      const before = dbProxy.counts.responsesCut;
      dbProxy.cutResponses(n);
      await until(() => dbProxy.armed === 0, 20_000);
      dbProxy.disarm();
      return `${dbProxy.counts.responsesCut - before} of ${n} committed answers cut`;
    },
  }),
  databaseRequestsCut: (n: number): Fault => ({
    name: "function<->Postgres: queries cut midway",
    inject: async ({ dbProxy }) => {
      const before = dbProxy.counts.requestsCut;
      dbProxy.cutRequests(n);
      await until(() => dbProxy.armed === 0, 20_000);
      dbProxy.disarm();
      return `${dbProxy.counts.requestsCut - before} of ${n} queries cut`;
    },
  }),
  databaseConnectionsDropped: (times: number, gapMs: number): Fault => ({
    name: "function<->Postgres: all connections dropped",
    inject: async ({ dbProxy }) => {
      const dropped: string[] = [];
      for (let i = 0; i < times; i++) {
        // Struck while a query is under way, so that one is cut for sure.
        await until(() => dbProxy.busy > 0, 5_000);
        const busy = dbProxy.busy;
        dropped.push(`${dbProxy.dropAll()} (${busy} busy)`);
        await sleep(gapMs);
      }
      return `${dropped.join(" + ")} connections dropped, ${gapMs} ms apart`;
    },
  }),
  httpAnswersLost: (n: number): Fault => ({
    name: "client<->gateway: answers lost",
    inject: async ({ httpProxy }) => {
      const before = httpProxy.counts.responsesCut;
      httpProxy.cutResponses(n);
      await until(() => httpProxy.armed === 0, 20_000);
      httpProxy.disarm();
      return `${httpProxy.counts.responsesCut - before} of ${n} answers cut`;
    },
  }),
  httpRequestsCut: (n: number): Fault => ({
    name: "client<->gateway: requests cut midway",
    inject: async ({ httpProxy }) => {
      const before = httpProxy.counts.requestsCut;
      httpProxy.cutRequests(n);
      await until(() => httpProxy.armed === 0, 20_000);
      httpProxy.disarm();
      return `${httpProxy.counts.requestsCut - before} of ${n} requests cut`;
    },
  }),
  postgresPaused: (ms: number, deadlineMs: number): Fault => ({
    name: `Postgres frozen (SIGSTOP) for ${ms / 1000} s`,
    inject: async ({ postgres, recorder }) => {
      const frozen = postgres.pause();
      const frozenAt = Date.now();
      try {
        await sleep(ms);
      } finally {
        postgres.resume();
      }
      const thawedAt = Date.now();
      // Past the deadline, the function must answer while Postgres is still frozen.
      const answered =
        recorder.requests.filter((r) =>
          r.status === 503 && r.endedAt !== null && r.endedAt > frozenAt && r.endedAt < thawedAt
        ).length;
      if (answered === 0 && ms > deadlineMs + 1_000) {
        throw new FaultCheckFailed(
          `no request was answered 503 while Postgres was frozen ${ms} ms, past the ${deadlineMs} ms deadline`,
        );
      }
      return `${frozen} processes frozen for ${ms} ms (the function's deadline: ${deadlineMs} ms), ` +
        `${answered} requests answered 503 meanwhile`;
    },
  }),
};

/** The full run: every fault, Postgres frozen past the function's deadline. */
const fullPlan = (deadlineMs: number): Fault[] => [
  faults.none(4_000),
  faults.postgresRestart("fast", 3_000),
  faults.postgresRestart("immediate", 3_000),
  faults.gatewayKilled(2_000),
  faults.workerKilled(),
  faults.databaseAnswersLost(6),
  faults.databaseRequestsCut(6),
  faults.databaseConnectionsDropped(3, 700),
  faults.httpAnswersLost(6),
  faults.httpRequestsCut(6),
  faults.postgresPaused(deadlineMs + 3_000, deadlineMs),
  faults.gatewayProcessKilled(1_000),
];

/**
 * The short form for `scripts/test`: each kind of fault once, briefly, with
 * a shorter statement timeout so that the freeze outlasts the function's
 * deadline in a few seconds.
 */
const shortPlan = (deadlineMs: number): Fault[] => [
  faults.none(1_500),
  faults.postgresRestart("immediate", 1_000),
  faults.workerKilled(),
  faults.databaseAnswersLost(3),
  faults.databaseRequestsCut(2),
  faults.databaseConnectionsDropped(1, 300),
  faults.httpAnswersLost(3),
  faults.httpRequestsCut(2),
  faults.gatewayKilled(500),
  faults.postgresPaused(deadlineMs + 2_000, deadlineMs),
];

interface PhaseResult {
  name: string;
  detail: string;
  startedMs: number;
  /** Milliseconds from the end of the fault to the next answered request that stored events. */
  recoveredInMs: number | null;
  answers: AnswerFigures;
}

/** Everything a run reports, also written as JSON with `--report`. */
export interface ChaosReport {
  short: boolean;
  seed: number;
  visitors: number;
  signedIn: number;
  durationMs: number;
  created: number;
  acknowledged: number;
  stored: number;
  lost: number;
  duplicated: number;
  misattributed: number;
  /** Events still queued in a client after the drain. */
  undelivered: number;
  lostExamples: string[];
  /** Which attempt stored each event, by what its client was told. */
  storedBy: StoringAttempts;
  /**
   * 500 answers the function logged: to clients that had gone already (a
   * request cut midway), so no client saw them.
   */
  unseenInternalErrors: number;
  sessions: SessionFigures;
  answers: AnswerFigures;
  /** The statement timeout the function ran with, and its deadline for a database call. */
  statementTimeoutMs: number;
  deadlineMs: number;
  answerBoundMs: number;
  /** The slowest requests, to see what the clients waited on. */
  slowest: Array<
    { phase: string; status: number | null; error: string | null; ms: number; events: number }
  >;
  phases: PhaseResult[];
  proxies: { database: FaultProxy["counts"]; http: FaultProxy["counts"] };
  /** What the trackers reported, by kind, summed over visitors. */
  trackerReports: Record<string, number>;
  problems: string[];
  failures: string[];
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** The text of a file from byte `offset` on. */
function readFrom(path: string, offset: number): string {
  try {
    return new TextDecoder().decode(Deno.readFileSync(path).subarray(offset));
  } catch {
    return "";
  }
}

async function createUsers(dbUrl: string, count: number, secret: string): Promise<VisitorUser[]> {
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {}, prepare: false });
  try {
    const key = new TextEncoder().encode(secret);
    const users: VisitorUser[] = [];
    for (let i = 0; i < count; i++) {
      const id = crypto.randomUUID();
      await sql`
        insert into auth.users (id, aud, role, email, created_at, updated_at)
        values (${id}, 'authenticated', 'authenticated', ${`chaos-${id}@example.test`}, now(), now())
      `;
      const now = Math.floor(Date.now() / 1000);
      const expiresAt = now + 3600;
      const accessToken = await new SignJWT({
        role: "authenticated",
        aud: "authenticated",
        sub: id,
        iss: `${env("SUPABASE_URL")}/auth/v1`,
      })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuedAt(now)
        .setExpirationTime(expiresAt)
        .sign(key);
      users.push({ id, accessToken, expiresAt });
    }
    return users;
  } finally {
    await sql.end();
  }
}

function pad(text: string | number, width: number, right = false): string {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
}

function printPhases(phases: PhaseResult[]): void {
  const columns: Array<[string, number]> = [
    ["requests", 9],
    ["2xx", 6],
    ["429", 5],
    ["502", 5],
    ["503", 5],
    ["other", 6],
    ["cut", 5],
    ["dup", 6],
    ["hung", 5],
    ["max s", 7],
    ["back in s", 10],
  ];
  console.log(pad("phase", 46) + columns.map(([name, width]) => pad(name, width, true)).join(""));
  for (const phase of phases) {
    const a = phase.answers;
    const count = (match: (status: number) => boolean) =>
      Object.entries(a.statuses)
        .filter(([status]) => match(Number(status)))
        .reduce((n, [, found]) => n + found, 0);
    const values = [
      a.requests,
      count((s) => s >= 200 && s < 300),
      count((s) => s === 429),
      count((s) => s === 502),
      count((s) => s === 503),
      count((s) => s < 200 || (s >= 300 && s !== 429 && s !== 502 && s !== 503)),
      a.networkErrors,
      a.duplicateAnswers,
      a.hung,
      (a.maxLatencyMs / 1000).toFixed(1),
      phase.recoveredInMs === null ? "-" : (phase.recoveredInMs / 1000).toFixed(1),
    ];
    console.log(
      pad(phase.name, 46) + values.map((value, i) => pad(value, columns[i][1], true)).join(""),
    );
  }
}

/** Stops at once what the run started: for an interrupted or overlong run. */
let emergencyStop = () => {};

async function run(options: Options): Promise<ChaosReport> {
  const began = Date.now();
  const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1).padStart(6)}s`;
  const log = (message: string) => console.log(`[${elapsed()}] ${message}`);
  const random = seededRandom(options.seed);
  const root = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
  const dbUrl = env("SUPABASE_DB_URL");
  const anonKey = env("SUPABASE_ANON_KEY");
  const visitorsCount = options.short ? 6 : 12;
  const signedInCount = options.short ? 4 : 8;
  const meanGapMs = 80;
  // The short form shortens the function's statement timeout, so that
  // Postgres can be frozen past the function's deadline within seconds.
  const statementTimeoutMs = options.short ? 2_000 : 10_000;
  const deadlineMs = callDeadlineMs(statementTimeoutMs);
  const answerBoundMs = deadlineMs + TRANSPORT_MARGIN_MS;
  const recorder = new Recorder({ hangAfterMs: HANG_AFTER_MS });

  const rig: Rig = {
    recorder,
    postgres: new PostgresCluster(options.pgdata),
    dbProxy: new FaultProxy({
      port: options.dbPort + 10,
      targetPort: options.dbPort,
      protocol: "postgres",
    }),
    httpProxy: new FaultProxy({
      port: options.apiPort + 10,
      targetPort: options.apiPort,
      protocol: "http",
    }),
    gateway: new Gateway({
      root,
      port: options.apiPort,
      env: {
        SUPABASE_URL: env("SUPABASE_URL"),
        SUPABASE_ANON_KEY: anonKey,
        SUPABASE_SERVICE_ROLE_KEY: env("SUPABASE_SERVICE_ROLE_KEY"),
        SUPABASE_JWT_SECRET: env("SUPABASE_JWT_SECRET"),
        SUPABASE_DB_URL: (() => {
          const url = new URL(dbUrl);
          url.port = String(options.dbPort + 10);
          return url.href;
        })(),
        TRACK_DB_STATEMENT_TIMEOUT_MS: String(statementTimeoutMs),
      },
      logFile: `${options.stackDir}/gateway.log`,
      pidFile: `${options.stackDir}/gateway.pid`,
    }),
  };
  emergencyStop = () => {
    rig.postgres.resume();
    rig.gateway.killAll();
  };

  const gatewayLog = `${options.stackDir}/gateway.log`;
  const logOffset = fileSize(gatewayLog);
  const visitors: Visitor[] = [];
  let stopLoad = false;
  const loops: Promise<void>[] = [];
  try {
    log(
      `starting the gateway on 127.0.0.1:${options.apiPort} (database through 127.0.0.1:${rig.dbProxy.port}, clients through 127.0.0.1:${rig.httpProxy.port})`,
    );
    await rig.gateway.start();
    const users = await createUsers(dbUrl, signedInCount, env("SUPABASE_JWT_SECRET"));
    for (let i = 0; i < visitorsCount; i++) {
      visitors.push(
        new Visitor({
          index: i,
          url: `http://127.0.0.1:${rig.httpProxy.port}`,
          anonKey,
          user: users[i] ?? null,
          recorder,
          random,
        }),
      );
    }
    await Promise.all(visitors.map((visitor) => visitor.ready()));
    log(
      `${visitorsCount} visitors (${signedInCount} signed in) tracking about ${
        Math.round(visitorsCount * 1000 / meanGapMs)
      } events/s, seed ${options.seed}`,
    );
    for (const visitor of visitors) {
      loops.push((async () => {
        while (!stopLoad) {
          visitor.trackSomething();
          await sleep(meanGapMs * (0.5 + random()));
        }
      })());
    }

    const phases: PhaseResult[] = [];
    const faultChecks: string[] = [];
    for (const fault of options.short ? shortPlan(deadlineMs) : fullPlan(deadlineMs)) {
      recorder.phase = fault.name;
      const startedMs = Date.now() - began;
      let detail: string;
      try {
        detail = await fault.inject(rig);
      } catch (error) {
        if (!(error instanceof FaultCheckFailed)) throw error;
        faultChecks.push(error.message);
        detail = error.message;
      }
      const ended = Date.now();
      const back = await until(
        () =>
          recorder.requests.some((r) =>
            r.startedAt >= ended && r.status === 200 && r.accepted + r.duplicates > 0
          ),
        30_000,
      );
      const recoveredInMs = back ? Date.now() - ended : null;
      await sleep(options.short ? 300 : 1_000);
      phases.push({ name: fault.name, detail, startedMs, recoveredInMs, answers: noAnswers() });
      log(
        `${fault.name}: ${detail}; ${
          recoveredInMs === null
            ? "no events stored within 30 s after it"
            : `events stored again ${(recoveredInMs / 1000).toFixed(1)} s after it`
        }`,
      );
    }

    stopLoad = true;
    await Promise.all(loops);
    recorder.phase = "drain";
    log("load stopped; draining the clients' queues");
    const drainDeadline = Date.now() + (options.short ? 20_000 : 45_000);
    const left = await Promise.all(visitors.map((visitor) => visitor.drain(drainDeadline)));
    const undelivered = left.reduce((n, count) => n + count, 0);
    await until(() => recorder.inFlight().length === 0, 5_000);
    log(`drained: ${undelivered} events still queued`);
    // Each request counts in the phase in which its answer came.
    for (const phase of phases) {
      phase.answers = summarizeAnswers(
        recorder.requests.filter((r) => r.phase === phase.name),
        answerBoundMs,
      );
    }

    const created = new Map<string, CreatedEvent>();
    for (const visitor of visitors) {
      for (const [id, event] of visitor.created) created.set(id, event);
    }
    const sql = postgres(dbUrl, { max: 2, onnotice: () => {}, prepare: false });
    let storage: StorageFigures;
    let sessions: SessionFigures;
    try {
      storage = await checkStorage(sql, created);
      sessions = await checkSessions(sql, [
        ...new Set([...created.values()].map((event) => event.sessionId)),
      ]);
    } finally {
      await sql.end();
    }

    const answers = summarizeAnswers(recorder.requests, answerBoundMs);
    const storedBy = storingAttempts(recorder.requests, storage.receivedAt);
    const unseenInternalErrors =
      (readFrom(gatewayLog, logOffset).match(/^track POST 500 /gm) ?? []).length -
      answers.internalErrors;
    const trackerReports: Record<string, number> = {};
    const problems: string[] = [];
    for (const visitor of visitors) {
      for (const [kind, count] of visitor.reports) {
        trackerReports[kind] = (trackerReports[kind] ?? 0) + count;
      }
      problems.push(...visitor.problems.map((p) => `visitor ${visitor.index}: ${p}`));
    }

    const failures: string[] = [];
    const fail = (condition: boolean, message: string) => condition && failures.push(message);
    fail(storage.created === 0, "no event was created");
    fail(storage.lost > 0, `${storage.lost} events lost`);
    fail(storage.duplicated > 0, `${storage.duplicated} events stored more than once`);
    fail(storage.misattributed > 0, `${storage.misattributed} rows with the wrong user or session`);
    fail(undelivered > 0, `${undelivered} events never delivered`);
    fail(sessions.mismatched > 0, `${sessions.mismatched} sessions disagree with their rows`);
    fail(answers.hung > 0, `${answers.hung} requests got no answer within ${HANG_AFTER_MS} ms`);
    fail(answers.late > 0, `${answers.late} answers came later than ${answerBoundMs} ms`);
    fail(
      answers.unavailableWithoutRetryAfter > 0,
      `${answers.unavailableWithoutRetryAfter} answers 503 without Retry-After`,
    );
    fail(answers.internalErrors > 0, `${answers.internalErrors} answers 500`);
    for (const check of faultChecks) fail(true, check);
    fail(recorder.rejected.size > 0, `${recorder.rejected.size} events rejected by the server`);
    for (const phase of phases) {
      fail(phase.recoveredInMs === null, `no events stored within 30 s after "${phase.name}"`);
    }
    for (const kind of ["dropped", "rejected", "validation", "storage", "internal"]) {
      fail(
        (trackerReports[kind] ?? 0) > 0,
        `the tracker reported ${kind}: ${trackerReports[kind]}`,
      );
    }

    console.log("");
    printPhases(phases);
    console.log("");
    return {
      short: options.short,
      seed: options.seed,
      visitors: visitorsCount,
      signedIn: signedInCount,
      durationMs: Date.now() - began,
      created: storage.created,
      acknowledged: [...created.keys()].filter((id) => recorder.acknowledged.has(id)).length,
      stored: storage.stored,
      lost: storage.lost,
      duplicated: storage.duplicated,
      misattributed: storage.misattributed,
      undelivered,
      lostExamples: storage.lostExamples,
      storedBy,
      unseenInternalErrors,
      sessions,
      answers,
      statementTimeoutMs,
      deadlineMs,
      answerBoundMs,
      slowest: recorder.requests
        .map((r) => ({
          phase: r.phase,
          status: r.status,
          error: r.error,
          ms: (r.endedAt ?? Date.now()) - r.startedAt,
          events: r.eventIds.length,
        }))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 5),
      phases,
      proxies: { database: { ...rig.dbProxy.counts }, http: { ...rig.httpProxy.counts } },
      trackerReports,
      problems,
      failures,
    };
  } finally {
    stopLoad = true;
    for (const visitor of visitors) visitor.stop();
    rig.postgres.resume();
    await rig.gateway.stop();
    try {
      Deno.removeSync(`${options.stackDir}/gateway.pid`);
    } catch {
      // Not written, or already removed.
    }
    await rig.dbProxy.close();
    await rig.httpProxy.close();
  }
}

function printReport(report: ChaosReport): void {
  const a = report.answers;
  console.log(
    `created ${report.created}  acknowledged ${report.acknowledged}  stored ${report.stored}  ` +
      `lost ${report.lost}  duplicated ${report.duplicated}`,
  );
  console.log(
    `sessions: ${report.sessions.checked} checked, ${report.sessions.mismatched} mismatched; ` +
      `rows with the wrong user or session: ${report.misattributed}; still queued: ${report.undelivered}`,
  );
  console.log(
    `answers: ${a.requests} requests (${
      Object.entries(a.statuses).map(([s, n]) => `${n}x${s}`).join(", ")
    }, ${a.networkErrors} cut or refused); slowest ${(a.maxLatencyMs / 1000).toFixed(1)} s ` +
      `(bound ${report.answerBoundMs / 1000} s); hung ${a.hung}; 503 without Retry-After ` +
      `${a.unavailableWithoutRetryAfter}; 500s ${a.internalErrors}; duplicates answered ${a.duplicateAnswers}`,
  );
  for (const r of report.slowest) {
    console.log(
      `  slow: ${(r.ms / 1000).toFixed(1)} s, ${
        r.status ?? r.error
      }, ${r.events} events, in "${r.phase}"`,
    );
  }
  const by = report.storedBy;
  console.log(
    `stored by: ${by.answeredOk} requests answered 2xx, ${by.answerLost} whose answer was lost, ` +
      `${by.answered503} answered 503, ${by.answeredOther} answered otherwise, ${by.unmatched} unmatched`,
  );
  for (const [status, count] of Object.entries(by.answeredOtherByStatus)) {
    console.log(`  stored though answered ${status}: ${count} events`);
  }
  for (const [phase, count] of Object.entries(by.answered503ByPhase)) {
    console.log(`  stored though answered 503: ${count} events in "${phase}"`);
  }
  if (report.unseenInternalErrors > 0) {
    console.log(
      `note: the function logged ${report.unseenInternalErrors} answers 500 to clients that had ` +
        "gone (requests cut midway; see the stack's gateway.log)",
    );
  }
  const p = report.proxies;
  console.log(
    `faults: database proxy ${p.database.responsesCut} answers cut, ${p.database.requestsCut} ` +
      `queries cut, ${p.database.dropped} connections dropped; HTTP proxy ${p.http.responsesCut} ` +
      `answers cut, ${p.http.requestsCut} requests cut`,
  );
  console.log(
    `tracker reports: ${
      Object.entries(report.trackerReports).map(([k, n]) => `${k} ${n}`).join(", ") || "none"
    }`,
  );
  for (const problem of report.problems.slice(0, 10)) console.log(`  ${problem}`);
  for (const example of report.sessions.examples) console.log(`  ${example}`);
  if (report.lostExamples.length > 0) console.log(`  lost: ${report.lostExamples.join(", ")}`);
  for (const failure of report.failures) console.log(`FAILED: ${failure}`);
  console.log(
    `chaos: ${report.failures.length === 0 ? "PASS" : "FAIL"} in ${
      (report.durationMs / 1000).toFixed(1)
    } s`,
  );
}

if (import.meta.main) {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}`);
    Deno.exit(2);
  }
  // Whatever happens, the run ends: a stuck step is abandoned and cleaned up.
  const limitMs = options.short ? 120_000 : 420_000;
  const limit = setTimeout(() => {
    emergencyStop();
    console.error(`chaos: the run took more than ${limitMs / 1000} s; giving up`);
    Deno.exit(2);
  }, limitMs);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      emergencyStop();
      console.error(`chaos: interrupted by ${sig}; stopped what the run started`);
      Deno.exit(130);
    });
  }
  try {
    const report = await run(options);
    printReport(report);
    if (options.report) {
      await Deno.writeTextFile(options.report, JSON.stringify(report, null, 2) + "\n");
    }
    clearTimeout(limit);
    Deno.exit(report.failures.length === 0 ? 0 : 1);
  } catch (error) {
    console.error("chaos: the run could not be carried out:", error);
    clearTimeout(limit);
    Deno.exit(2);
  }
}

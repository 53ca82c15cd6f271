/**
 * The ingestion benchmark (run it with `scripts/bench`, which starts the
 * stack first). In one run, on the same tables and indexes, it measures:
 *
 * - (a) the ceiling: the rows loaded with COPY straight into
 *   `public.user_interactions` plus the `public.sessions` upsert they imply;
 * - (b) our path end to end: HTTP -> gateway -> `track` -> `ingest_interactions`,
 *   per batch size and concurrency, then at half the maximum throughput at
 *   batch 100 (open loop), and optionally under sustained load (`--soak`);
 *   and its SQL half alone: the statement the function sends (the rate-limit
 *   charge and the `ingest_interactions` call) made directly, at the
 *   concurrencies COPY runs at;
 * - (c) the naive path: one INSERT per event over a connection pool;
 *
 * and the CPU of each process group, the cost of zod validation in process,
 * and the function processes' memory. It prints a table and writes
 * `bench-results/latest.json` and `bench-results/throughput.svg`.
 *
 * The tables it loads are emptied (TRUNCATE) before every measurement and at
 * the end: the benchmark owns the stack while it runs.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createUser, sql as stackSql, stack, trackUrl } from "../../test_support/stack.ts";
import { validateEvent } from "../../supabase/functions/_shared/schemas.ts";
import { rateLimitsFromEnv } from "../../supabase/functions/track/rate_limit.ts";
import {
  copyJob,
  type DbLoadResult,
  ingestJob,
  openStore,
  rowsOf,
  runCopy,
  runIngest,
  runNaive,
  truncateTables,
} from "./database_paths.ts";
import { closedLoop, type LoadResult, openLoop, type RequestSpec } from "./http_load.ts";
import { throughputPlot } from "./plot.ts";
import {
  collectHeapReports,
  cpuDelta,
  findProcesses,
  type HeapSample,
  parentOf,
  type RssSample,
  sampleRss,
  snapshot,
  type Watched,
} from "./processes.ts";
import {
  type Cell,
  formatReport,
  type PathName,
  type SoakResult,
  summarize,
  summarizeHeap,
} from "./report.ts";
import { latencySummary, slope, windowMinima } from "./stats.ts";
import { waitForQuiet } from "./quiet.ts";
import { measureValidation } from "./validation_cost.ts";
import {
  type Batch,
  batchesOf,
  generateWorkload,
  type Visitor,
  type Workload,
} from "./workload.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

// --- options ------------------------------------------------------------------

function usageError(message: string): never {
  console.error(`bench: ${message} (see scripts/bench --help)`);
  Deno.exit(2);
}

function parseOptions() {
  try {
    return parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        quick: { type: "boolean", default: false },
        force: { type: "boolean", default: false },
        soak: { type: "string" },
        duration: { type: "string" },
        batches: { type: "string" },
        concurrency: { type: "string" },
        visitors: { type: "string" },
        seed: { type: "string", default: "20261124" },
        out: { type: "string", default: "bench-results" },
        "check-options": { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
}

const args = parseOptions();

/** The option's number, refused unless it is finite and at least `min`. */
function numberOf(name: string, text: string, min: number): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < min) {
    usageError(`--${name} needs a number of at least ${min}, not "${text}"`);
  }
  return value;
}

function list(name: string, text: string, max = Infinity): number[] {
  const values = text.split(",").map((item) => numberOf(name, item, 1));
  if (values.some((n) => !Number.isInteger(n) || n > max)) {
    usageError(`--${name} needs whole numbers from 1 to ${max}, not "${text}"`);
  }
  return values;
}

const plan = args.quick
  ? {
    visitors: 60,
    batches: [1, 10, 100, 500],
    httpConcurrency: [1, 8],
    copyConcurrency: [4],
    naiveConcurrency: [8],
    cellMs: 1200,
    copyMs: 800,
    rateMs: 2500,
    warmupMs: 800,
    soakSeconds: 0,
    validationMs: 300,
    // Seconds to wait for a quiet machine, first and before each measurement;
    // whether a noisy measurement is taken again.
    quietFirst: 10,
    quietEach: 0,
    retryNoisy: false,
  }
  : {
    visitors: 300,
    batches: [1, 10, 100, 500],
    httpConcurrency: [1, 2, 4, 8, 16],
    copyConcurrency: [1, 2, 4, 8],
    naiveConcurrency: [1, 4, 16],
    cellMs: 5000,
    copyMs: 4000,
    rateMs: 10000,
    warmupMs: 3000,
    soakSeconds: 300,
    validationMs: 2000,
    quietFirst: 120,
    quietEach: 15,
    retryNoisy: true,
  };
if (args.visitors !== undefined) plan.visitors = Math.round(numberOf("visitors", args.visitors, 2));
if (args.batches !== undefined) plan.batches = list("batches", args.batches, 500);
if (args.concurrency !== undefined) plan.httpConcurrency = list("concurrency", args.concurrency);
if (args.duration !== undefined) {
  plan.cellMs = plan.copyMs = numberOf("duration", args.duration, 0.1) * 1000;
}
if (args.soak !== undefined) plan.soakSeconds = numberOf("soak", args.soak, 0);
const eventsPerVisitor = 500;
if (args.force) plan.quietFirst = plan.quietEach = 0;
const seed = numberOf("seed", args.seed!, 0);
// scripts/bench asks this before it starts anything.
if (args["check-options"]) Deno.exit(0);
// The function charges every request to the rate limit, so the SQL half
// alone charges its calls too, with the limits the stack's gateway was given.
const rateLimits = rateLimitsFromEnv(Deno.env);
const outDir = args.out!.startsWith("/") ? args.out! : `${root}${args.out}`;

// A hard stop, so the benchmark always ends by itself.
const cellCount =
  plan.batches.length * (plan.httpConcurrency.length + 2 * plan.copyConcurrency.length) +
  plan.naiveConcurrency.length + 2;
const plannedSeconds = plan.batches.length *
    (plan.httpConcurrency.length * (plan.cellMs / 1000 + 2) +
      2 * plan.copyConcurrency.length * (plan.copyMs / 1000 + 2)) +
  plan.naiveConcurrency.length * (plan.cellMs / 1000 + 2) + plan.rateMs / 1000 + plan.soakSeconds +
  cellCount * (plan.quietEach + 2) + plan.quietFirst + 240;
// Noisy measurements are taken twice, so allow for that.
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${Math.round(plannedSeconds * 2.5)} s; giving up`);
  Deno.exit(3);
}, plannedSeconds * 2500);
Deno.unrefTimer(watchdog);

const say = (line: string) => console.error(line);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// --- preflight ----------------------------------------------------------------

const store = await openStore(stack.dbUrl, 16);
const db = store.sql;
const [{ ingest }] = await db<{ ingest: string | null }[]>`
  select to_regprocedure('public.ingest_interactions(uuid, jsonb, jsonb, jsonb)')::text as ingest
`;
if (!ingest) {
  say("bench: public.ingest_interactions is not in the database (apply the migrations)");
  Deno.exit(2);
}
if (plan.quietFirst > 0) {
  const busy = await waitForQuiet(db, plan.quietFirst);
  if (busy.length) {
    say(
      `bench: warning: not quiet after ${plan.quietFirst} s (${busy.join(", ")}); ` +
        "running anyway, the bg % column shows how much of the machine others used",
    );
  }
}
// This stack's gateway (its pid file, from scripts/bench) and Postgres server.
const gatewayPid = Number(
  (await Deno.readTextFile(Deno.env.get("BENCH_GATEWAY_PID_FILE") ?? `${root}.stack/gateway.pid`))
    .trim(),
);
const [{ backend }] = await db<{ backend: number }[]>`select pg_backend_pid() as backend`;
const postmasterPid = parentOf(backend) ?? 0;
let watched: Watched = await findProcesses(gatewayPid, postmasterPid);
const busyBefore = await (async () => {
  const before = await snapshot(watched);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return cpuDelta(before, await snapshot(watched)).machineBusy;
})();
if (busyBefore > 0.15) {
  say(`bench: warning: the machine was ${fmt(busyBefore * 100)}% busy before the run started`);
}
if (watched.functionPids.length === 0) {
  say(`bench: the gateway (pid ${gatewayPid}) serves no track function process`);
  Deno.exit(2);
}

// --- the workload ---------------------------------------------------------------

const generationStart = performance.now();
const signedIn = Math.floor(plan.visitors / 2);
const createdUsers: string[] = [];
const visitors: Visitor[] = [];
for (let i = 0; i < plan.visitors; i++) {
  const address = `127.10.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  if (i % 2 === 0 && createdUsers.length < signedIn) {
    const user = await createUser();
    createdUsers.push(user.id);
    visitors.push({ kind: "user", token: user.token, userId: user.id, address });
  } else {
    visitors.push({
      kind: "anon",
      token: stack.anonKey,
      anonymousId: `bench-${crypto.randomUUID()}`,
      address,
    });
  }
}
const clients = new Map(
  visitors.map((v) => [v.address, Deno.createHttpClient({ localAddress: v.address })]),
);
const workload: Workload = generateWorkload({ visitors, eventsPerVisitor, seed });
const singles = batchesOf(workload, 1);
{
  const sample = singles.slice(0, 20000).map((b) => b.events[0]);
  const refused = sample.map((event) => ({ event, result: validateEvent(event) }))
    .filter(({ result }) => !result.ok);
  if (refused.length) {
    const first = refused[0];
    say(
      `bench: ${refused.length} generated events fail the contract, e.g. ${
        JSON.stringify(first.event)
      }: ${JSON.stringify(first.result.ok ? [] : first.result.errors)}`,
    );
    Deno.exit(2);
  }
}
say(
  `bench: ${fmt(workload.events)} events, ${fmt(workload.sessions)} sessions, ${signedIn} users + ${
    plan.visitors - signedIn
  } anonymous visitors, ${workload.meanEventBytes} B/event (metadata ${workload.meanMetadataBytes} B), ` +
    `${watched.functionPids.length} function process(es), user_interactions ${
      store.partitioned ? "partitioned" : "not partitioned"
    }${store.eventIdRegistry ? " with an event id registry" : ""}, generated in ${
      fmt((performance.now() - generationStart) / 1000, 1)
    } s`,
);

function httpRequests(batches: Batch[]): RequestSpec[] {
  const sentAt = new Date().toISOString();
  return batches.map((b) => ({
    body: JSON.stringify({ events: b.events, sentAt }),
    token: b.visitor.token,
    events: b.events.length,
    client: clients.get(b.visitor.address),
  }));
}

function cursor<T>(items: T[]): () => T | undefined {
  let i = 0;
  return () => items[i++];
}

// --- measuring ------------------------------------------------------------------

const cells: Cell[] = [];

interface Outcome {
  requests: number;
  events: number;
  wallSeconds: number;
  latenciesMs: number[];
  answeredAtMs?: number[];
  errors: number;
  statuses?: Record<string, number>;
  failures: string[];
}

const fromHttp = (r: LoadResult): Outcome => ({ ...r, errors: r.requests - r.goodRequests });
const fromDb = (r: DbLoadResult): Outcome => r;

/** Background CPU (other processes) above which a measurement is taken again, once. */
const NOISY_BACKGROUND = 0.2;

/** Measures one cell: empties the tables, runs it, and reads CPU and memory around it. */
async function measureOnce(
  path: PathName,
  batch: number,
  concurrency: number,
  run: () => Promise<Outcome>,
  options: { targetRate?: number; rssIntervalMs?: number },
): Promise<{ cell: Cell; rss: RssSample[]; outcome: Outcome }> {
  if (plan.quietEach > 0) await waitForQuiet(db, plan.quietEach);
  await truncateTables(store);
  watched = await findProcesses(gatewayPid, postmasterPid);
  const before = await snapshot(watched);
  const sampler = sampleRss(watched, options.rssIntervalMs ?? 500);
  const outcome = await run();
  const after = await snapshot(watched);
  const rss = sampler.stop();
  const cpu = cpuDelta(before, after);
  const perEvent = (seconds: number) => outcome.events ? (seconds * 1e6) / outcome.events : NaN;
  const cell: Cell = {
    path,
    batch,
    concurrency,
    ...(options.targetRate ? { targetRate: options.targetRate } : {}),
    requests: outcome.requests,
    events: outcome.events,
    wallSeconds: outcome.wallSeconds,
    eventsPerSecond: outcome.events / outcome.wallSeconds,
    requestsPerSecond: outcome.requests / outcome.wallSeconds,
    latencyMs: latencySummary(outcome.latenciesMs),
    cpuSeconds: cpu,
    cpuMicrosPerEvent: {
      function: perEvent(cpu.function),
      gateway: perEvent(cpu.gateway),
      postgres: perEvent(cpu.postgres),
      loadGenerator: perEvent(cpu.loadGenerator),
    },
    functionRssMaxMiB: Math.max(...rss.map((s) => s.functionMiB)),
    errors: outcome.errors,
    ...(outcome.statuses ? { statuses: outcome.statuses } : {}),
    failures: outcome.failures,
  };
  return { cell, rss, outcome };
}

/**
 * Measures one cell and records it. When other processes used more than
 * {@link NOISY_BACKGROUND} of the machine meanwhile, it measures again once
 * and keeps the quieter of the two (the report shows the background share).
 */
async function measure(
  path: PathName,
  batch: number,
  concurrency: number,
  run: () => Promise<Outcome>,
  options: { targetRate?: number; rssIntervalMs?: number; retry?: boolean } = {},
): Promise<{ cell: Cell; rss: RssSample[]; outcome: Outcome }> {
  let result = await measureOnce(path, batch, concurrency, run, options);
  if (
    plan.retryNoisy && options.retry !== false &&
    result.cell.cpuSeconds.background > NOISY_BACKGROUND
  ) {
    const again = await measureOnce(path, batch, concurrency, run, options);
    if (again.cell.cpuSeconds.background < result.cell.cpuSeconds.background) result = again;
  }
  const { cell } = result;
  cells.push(cell);
  say(
    `  ${path.padEnd(9)} batch ${String(batch).padStart(3)} ${
      options.targetRate ? `@${fmt(options.targetRate)} req/s` : `x${concurrency}`
    }: ${fmt(cell.eventsPerSecond).padStart(7)} events/s, p50 ${
      fmt(cell.latencyMs.p50, 1)
    } ms, p99 ${fmt(cell.latencyMs.p99, 1)} ms, background ${
      fmt(cell.cpuSeconds.background * 100)
    }%${cell.errors ? `, ${cell.errors} errors: ${cell.failures[0]}` : ""}`,
  );
  return result;
}

/** Latency of the requests answered in each `seconds`-long window of a run. */
function latencyWindows(outcome: Outcome, seconds: number) {
  const answered = outcome.answeredAtMs ?? [];
  const windows = new Map<number, number[]>();
  answered.forEach((at, i) => {
    const t = Math.floor(at / 1000 / seconds) * seconds;
    const window = windows.get(t) ?? [];
    window.push(outcome.latenciesMs[i]);
    windows.set(t, window);
  });
  return [...windows.entries()].sort(([a], [b]) => a - b)
    .map(([t, latencies]) => ({ t, requests: latencies.length, ...latencySummary(latencies) }));
}

async function warmPool(size: number): Promise<void> {
  await Promise.all(Array.from({ length: size }, () => db`select 1`));
}

// Warm-up: the function's connections, JIT and the database caches. The
// tables are emptied first: an earlier run's sessions have other owners.
{
  await warmPool(16);
  await truncateTables(store);
  const requests = httpRequests(batchesOf(workload, 100));
  const warm = await closedLoop(trackUrl, stack.anonKey, cursor(requests), 4, plan.warmupMs);
  if (warm.goodRequests === 0) {
    say(`bench: the track function accepted nothing while warming up: ${warm.failures[0]}`);
    Deno.exit(2);
  }
}

for (const batch of plan.batches) {
  const batches = batchesOf(workload, batch);
  say(`batch ${batch}: ${fmt(batches.length)} requests prepared`);
  const receivedAt = new Date();
  let jobs = batches.map((b) => copyJob(rowsOf(b.events, b.visitor, receivedAt)));
  for (const c of plan.copyConcurrency) {
    await measure("copy", batch, c, async () => fromDb(await runCopy(store, jobs, c, plan.copyMs)));
  }
  jobs = [];
  let calls = batches.map((b) => ingestJob(b.events, b.visitor, receivedAt));
  for (const c of plan.copyConcurrency) {
    await measure(
      "sql",
      batch,
      c,
      async () => fromDb(await runIngest(store, calls, c, plan.copyMs, rateLimits)),
    );
  }
  calls = [];
  const requests = httpRequests(batches);
  for (const c of plan.httpConcurrency) {
    await measure(
      "http",
      batch,
      c,
      async () =>
        fromHttp(await closedLoop(trackUrl, stack.anonKey, cursor(requests), c, plan.cellMs)),
    );
  }
}

{
  const receivedAt = new Date();
  const rows = singles.flatMap((b) => rowsOf(b.events, b.visitor, receivedAt));
  const bulk = copyJob(rows);
  await measure(
    "copy-bulk",
    rows.length,
    1,
    async () => fromDb(await runCopy(store, [bulk], 1, 600_000)),
  );
  for (const c of plan.naiveConcurrency) {
    await measure("naive", 1, c, async () => fromDb(await runNaive(store, rows, c, plan.cellMs)));
  }
}

// Latency at half the best throughput measured at batch 100, and sustained load at that rate.
const rateBatch = plan.batches.includes(100) ? 100 : plan.batches[plan.batches.length - 1];
const bestAtRateBatch = Math.max(
  ...cells.filter((c) => c.path === "http" && c.batch === rateBatch).map((c) => c.eventsPerSecond),
);
const rate = (bestAtRateBatch / 2) / rateBatch;
const rateBatches = batchesOf(workload, rateBatch);
await measure(
  "http-rate",
  rateBatch,
  64,
  async () =>
    fromHttp(
      await openLoop(
        trackUrl,
        stack.anonKey,
        cursor(httpRequests(rateBatches)),
        rate,
        plan.rateMs,
        64,
      ),
    ),
  { targetRate: rate },
);

let soak: SoakResult | undefined;
if (plan.soakSeconds > 0) {
  say(`soak: batch ${rateBatch} at ${fmt(rate, 1)} req/s for ${plan.soakSeconds} s`);
  // Fresh event ids on every pass, so every event is new to the database.
  let i = 0;
  const next = (): RequestSpec => {
    const b = rateBatches[i++ % rateBatches.length];
    const events = b.events.map((e) => ({ ...e, eventId: crypto.randomUUID() }));
    return {
      body: JSON.stringify({ events, sentAt: new Date().toISOString() }),
      token: b.visitor.token,
      events: events.length,
      client: clients.get(b.visitor.address),
    };
  };
  const checkpoints = async () => {
    const [row] = await db<{ n: number }[]>`
      select (checkpoints_timed + checkpoints_req)::integer as n from pg_stat_bgwriter
    `;
    return row.n;
  };
  const checkpointsBefore = await checkpoints();
  // The live heap after GC, which tells whether the function retains memory:
  // one forced full GC in each function process every 10 s, during the soak
  // only (scripts/bench starts the gateway with GATEWAY_HEAP_REPORTS).
  let heap: { samples: HeapSample[]; missing?: string } = { samples: [] };
  const { cell, rss, outcome } = await measure(
    "soak",
    rateBatch,
    64,
    async () => {
      const reports = collectHeapReports(
        Deno.env.get("GATEWAY_HEAP_REPORTS"),
        watched.functionPids,
        10_000,
      );
      try {
        return fromHttp(
          await openLoop(trackUrl, stack.anonKey, next, rate, plan.soakSeconds * 1000, 64),
        );
      } finally {
        heap = await reports.stop();
      }
    },
    { targetRate: rate, rssIntervalMs: 1000, retry: false },
  );
  // RSS by quarter, for information: the first shows the warm-up (the V8 heap
  // sizing itself to the load).
  const quarter = (q: number) =>
    rss.filter((s) => s.t >= (plan.soakSeconds * q) / 4 && s.t < (plan.soakSeconds * (q + 1)) / 4);
  const mean = (xs: typeof rss) => xs.reduce((sum, s) => sum + s.functionMiB, 0) / xs.length;
  const secondHalf = rss.filter((s) => s.t >= plan.soakSeconds / 2);
  const rssWindow = plan.soakSeconds >= 120 ? 60 : 10;
  soak = {
    seconds: plan.soakSeconds,
    eventsPerSecond: cell.eventsPerSecond,
    latencyMs: cell.latencyMs,
    errors: cell.errors,
    heap: summarizeHeap(heap.samples, plan.soakSeconds),
    ...(heap.missing ? { heapMissing: heap.missing } : {}),
    rssWindowMinima: windowMinima(rss.map((s) => ({ t: s.t, y: s.functionMiB })), rssWindow)
      .map((w) => ({ t: w.t, seconds: w.seconds, minMiB: w.min })),
    firstQuarterMiB: mean(quarter(0)),
    thirdQuarterMiB: mean(quarter(2)),
    lastQuarterMiB: mean(quarter(3)),
    maxMiB: Math.max(...rss.map((s) => s.functionMiB)),
    slopeMiBPerMinute: slope(secondHalf.map((s) => ({ x: s.t / 60, y: s.functionMiB }))),
    samples: rss,
    checkpoints: (await checkpoints()) - checkpointsBefore,
    latencyWindows: latencyWindows(outcome, 10),
  };
}

// The CPU zod costs, in process (a worker of its own), on the same events.
const validation = await (() => {
  const sampleEvents = singles.slice(0, 5000).map((b) => b.events[0]);
  const bodies = httpRequests(batchesOf(workload, 100).slice(0, 50));
  const inBodies = bodies.reduce((sum, r) => sum + r.events, 0);
  return measureValidation(sampleEvents, bodies.map((r) => r.body), inBodies, plan.validationMs);
})();

// --- clean up, report -------------------------------------------------------------

const settings = await (async () => {
  const rows = await db<{ name: string; setting: string; unit: string | null }[]>`
    select name, setting, unit from pg_settings
    where name in ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size',
      'checkpoint_timeout', 'max_connections', 'work_mem', 'wal_buffers', 'full_page_writes')
  `;
  const [{ version }] = await db<{ version: string }[]>`select version()`;
  return {
    version,
    settings: Object.fromEntries(
      rows.map((r) => [r.name, r.setting + (r.unit ? ` ${r.unit}` : "")]),
    ),
  };
})();
await truncateTables(store);
await db`delete from auth.users where id = any(${createdUsers}::uuid[])`;
await db.end();
await stackSql.end();
for (const client of clients.values()) client.close();

const summary = summarize(cells, validation, soak);
console.log("");
console.log(formatReport(cells, summary));
console.log("");
console.log(
  `zod: validation as the function runs it (parseJson + parseTrackBody ${
    fmt(validation.parseAndValidateMicros, 1)
  } less JSON.parse ${fmt(validation.jsonParseMicros, 1)}) ${
    fmt(validation.validateParsedMicros, 1)
  } µs/event, the share's basis; validateEvent on the generator's objects ${
    fmt(validation.validateEventMicros, 1)
  } µs/event, for information`,
);
if (soak) {
  console.log(
    `soak: ${soak.seconds} s at ${fmt(soak.eventsPerSecond)} events/s, p99 ${
      fmt(soak.latencyMs.p99, 1)
    } ms, ${soak.errors} errors`,
  );
  console.log(
    soak.heap
      ? `soak live heap after GC (every 10 s): ${
        soak.heap.samples.map((s) => fmt(s.heapUsedMiB, 1)).join(", ")
      } MiB; 3rd -> 4th quarter ${fmt(soak.heap.thirdQuarterMiB, 2)} -> ${
        fmt(soak.heap.lastQuarterMiB, 2)
      } MiB, ${fmt(soak.heap.slopeMiBPerMinute, 2)} MiB/min over the second half`
      : `soak live heap after GC: not measured (${soak.heapMissing})`,
  );
  console.log(
    `soak function RSS, for information: least per ${soak.rssWindowMinima[0]?.seconds} s window ${
      soak.rssWindowMinima.map((w) => fmt(w.minMiB, 1)).join(", ")
    } MiB; by quarter ${fmt(soak.firstQuarterMiB, 1)}, ${fmt(soak.thirdQuarterMiB, 1)} -> ${
      fmt(soak.lastQuarterMiB, 1)
    } MiB (max ${fmt(soak.maxMiB, 1)}, ${
      fmt(soak.slopeMiBPerMinute, 2)
    } MiB/min over the second half)`,
  );
  const worst = soak.latencyWindows.reduce((a, b) => (b.p99 > a.p99 ? b : a));
  const p99s = soak.latencyWindows.map((w) => w.p99).sort((a, b) => a - b);
  console.log(
    `soak latency by 10 s window: median window p99 ${
      fmt(p99s[Math.floor(p99s.length / 2)], 1)
    } ms, worst ${fmt(worst.p99, 1)} ms at ${worst.t} s; ${soak.checkpoints} checkpoints`,
  );
}

async function run(command: string, ...argv: string[]): Promise<string> {
  try {
    const { stdout } = await new Deno.Command(command, { args: argv, cwd: root }).output();
    return new TextDecoder().decode(stdout).trim();
  } catch {
    return "";
  }
}

const cpuModel = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ??
  "unknown";
const memTotal = (await Deno.readTextFile("/proc/meminfo")).match(/MemTotal:\s+(\d+)/)?.[1];
const machine = {
  cpu: cpuModel,
  cores: navigator.hardwareConcurrency,
  memoryGiB: memTotal ? Math.round(Number(memTotal) / 1024 / 1024) : undefined,
  kernel: Deno.osRelease(),
  deno: Deno.version.deno,
  postgres: settings.version,
  postgresSettings: settings.settings,
  functionProcesses: watched.functionPids.length,
  busyBeforeRun: busyBefore,
};
const commit = await run("git", "rev-parse", "--short", "HEAD");
const dirty = (await run("git", "status", "--porcelain")).length > 0;

await Deno.mkdir(outDir, { recursive: true });
const report = {
  finishedAt: new Date().toISOString(),
  commit: commit + (dirty ? " (with uncommitted changes)" : ""),
  options: { quick: args.quick, seed, ...plan },
  machine,
  stack: { name: Deno.env.get("BENCH_STACK_NAME") ?? "", url: stack.url, database: stack.dbUrl },
  schema: { partitioned: store.partitioned, eventIdRegistry: store.eventIdRegistry },
  workload: {
    events: workload.events,
    sessions: workload.sessions,
    signedInUsers: signedIn,
    anonymousVisitors: plan.visitors - signedIn,
    meanEventBytes: workload.meanEventBytes,
    meanMetadataBytes: workload.meanMetadataBytes,
    eventTypes: workload.eventTypes,
    entityTypes: workload.entityTypes,
  },
  summary: { ...summary, rate: undefined },
  validation,
  soak: soak ?? null,
  cells,
};
await Deno.writeTextFile(`${outDir}/latest.json`, JSON.stringify(report, null, 2) + "\n");

await Deno.writeTextFile(
  `${outDir}/throughput.svg`,
  throughputPlot(
    cells,
    summary,
    `${machine.cores} cores (${cpuModel}), ${machine.functionProcesses} function process(es), ${
      fmt(workload.meanEventBytes)
    } B/event; ${report.finishedAt.slice(0, 16)}Z, ${report.commit}`,
  ),
);
say(`bench: wrote ${outDir}/latest.json and ${outDir}/throughput.svg`);
const missed = summary.targets.filter((t) => t.met === false).length;
say(`bench: ${summary.targets.filter((t) => t.met).length} targets met, ${missed} missed`);

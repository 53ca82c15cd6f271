/**
 * Turns the benchmark's measurements into its verdicts and its terminal
 * report: the best of each path per batch size, the ratios between them, and
 * the targets met or missed.
 *
 * @example
 * ```ts
 * import { type Cell, formatReport, type SoakResult, summarize } from "./report.ts";
 * import type { ValidationCost } from "./validation_cost.ts";
 *
 * function report(cells: Cell[], validation?: ValidationCost, soak?: SoakResult) {
 *   const summary = summarize(cells, validation, soak);
 *   console.log(formatReport(cells, summary));
 * }
 * ```
 *
 * @module
 */
import type { CpuUsage, HeapSample } from "./processes.ts";
import { type LatencySummary, slope } from "./stats.ts";
import type { ValidationCost } from "./validation_cost.ts";

/** The path a measurement exercised. */
export type PathName = "copy" | "copy-bulk" | "sql" | "http" | "http-rate" | "naive" | "soak";

/** One measurement: a path at one batch size and one concurrency (or rate). */
export interface Cell {
  path: PathName;
  batch: number;
  /** Clients sending at once (closed loop), or the cap on requests in flight (open loop). */
  concurrency: number;
  /** Requests per second asked for, in an open-loop run. */
  targetRate?: number;
  requests: number;
  events: number;
  wallSeconds: number;
  eventsPerSecond: number;
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  cpuSeconds: CpuUsage;
  /** CPU microseconds per stored event, by process group. */
  cpuMicrosPerEvent: { function: number; gateway: number; postgres: number; loadGenerator: number };
  functionRssMaxMiB: number;
  errors: number;
  statuses?: Record<string, number>;
  failures: string[];
}

/** The live heap series and what the memory verdict rests on. */
export interface HeapSummary {
  /** Mean live heap after GC over the third and the last quarter of the soak, MiB. */
  thirdQuarterMiB: number;
  lastQuarterMiB: number;
  minMiB: number;
  maxMiB: number;
  /** Least-squares growth over the second half of the soak. */
  slopeMiBPerMinute: number;
  samples: HeapSample[];
}

/** Growth of the live heap after GC, over the soak's second half, that still counts as flat. */
export const FLAT_HEAP_MIB_PER_MINUTE = 0.5;
/** Change of the mean live heap from the third to the last quarter that still counts as flat. */
export const FLAT_HEAP_QUARTER_CHANGE = 0.05;

/** The samples of `[from, to)` quarters of a `seconds`-long run (the last one closed). */
function inQuarter<T extends { t: number }>(samples: T[], seconds: number, q: number): T[] {
  const from = (seconds * q) / 4;
  const to = (seconds * (q + 1)) / 4;
  return samples.filter((s) => s.t >= from && (q === 3 || s.t < to));
}

/** Summarizes the live heap samples of a `seconds`-long soak; undefined without samples. */
export function summarizeHeap(samples: HeapSample[], seconds: number): HeapSummary | undefined {
  if (samples.length === 0) return undefined;
  const mean = (xs: HeapSample[]) =>
    xs.length ? xs.reduce((sum, s) => sum + s.heapUsedMiB, 0) / xs.length : NaN;
  const secondHalf = samples.filter((s) => s.t >= seconds / 2);
  return {
    thirdQuarterMiB: mean(inQuarter(samples, seconds, 2)),
    lastQuarterMiB: mean(inQuarter(samples, seconds, 3)),
    minMiB: Math.min(...samples.map((s) => s.heapUsedMiB)),
    maxMiB: Math.max(...samples.map((s) => s.heapUsedMiB)),
    slopeMiBPerMinute: slope(secondHalf.map((s) => ({ x: s.t / 60, y: s.heapUsedMiB }))),
    samples,
  };
}

/**
 * Whether the live heap after GC stayed flat: it grows less than
 * {@link FLAT_HEAP_MIB_PER_MINUTE} over the second half, and its last
 * quarter's mean is within {@link FLAT_HEAP_QUARTER_CHANGE} of the third's.
 * Null when there is nothing to judge.
 */
export function heapIsFlat(heap: HeapSummary | undefined): boolean | null {
  if (!heap) return null;
  const change = heap.lastQuarterMiB / heap.thirdQuarterMiB - 1;
  if (!Number.isFinite(change)) return null;
  return heap.slopeMiBPerMinute < FLAT_HEAP_MIB_PER_MINUTE &&
    Math.abs(change) < FLAT_HEAP_QUARTER_CHANGE;
}

/** The function processes' memory over the sustained-load phase. */
export interface SoakResult {
  seconds: number;
  eventsPerSecond: number;
  latencyMs: LatencySummary;
  errors: number;
  /**
   * The live JS heap after a forced GC every 10 s, which the verdict is
   * judged on; undefined when the function processes could not report it.
   */
  heap?: HeapSummary;
  /** Why there is no heap series, when there is none. */
  heapMissing?: string;
  /**
   * The least RSS of the function processes in each window of the run, for
   * information: RSS follows the allocator and V8's heap sizing, not only
   * what the function retains.
   */
  rssWindowMinima: Array<{ t: number; seconds: number; minMiB: number }>;
  /** Mean RSS of the function processes over the first, third and last quarter, MiB. */
  firstQuarterMiB: number;
  thirdQuarterMiB: number;
  lastQuarterMiB: number;
  maxMiB: number;
  /** Least-squares RSS growth over the second half of the run. */
  slopeMiBPerMinute: number;
  samples: Array<{ t: number; functionMiB: number; gatewayMiB: number }>;
  /** Checkpoints Postgres made during the run. */
  checkpoints: number;
  /** Latency of the requests answered in each 10-second window. */
  latencyWindows: Array<{ t: number; requests: number } & LatencySummary>;
}

/** One issue target and how the run fared against it. */
export interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

/** The best of each path at one batch size, and their ratios. */
export interface BatchSummary {
  batch: number;
  copy?: { eventsPerSecond: number; concurrency: number };
  http?: {
    eventsPerSecond: number;
    concurrency: number;
    p99: number;
    functionMicrosPerEvent: number;
    gatewayMicrosPerEvent: number;
    postgresMicrosPerEvent: number;
  };
  /** The SQL half of (b) alone: the function's statement (rate-limit charge and `ingest_interactions`) made directly. */
  sql?: { eventsPerSecond: number; concurrency: number; postgresMicrosPerEvent: number };
  httpOverCopy?: number;
  /**
   * The SQL half over (a): the (b)/(a) our path reaches when the function's
   * processes do not compete with Postgres for its cores, as measured.
   */
  sqlOverCopy?: number;
  /**
   * Postgres CPU per event of (a) over that of (b): the ratio (b)/(a) would
   * approach if Postgres had its cores to itself (functions on other machines).
   */
  postgresBoundRatio?: number;
  httpOverBulkCopy?: number;
  httpOverNaive?: number;
}

/** Everything the verdict rests on. */
export interface Summary {
  perBatch: BatchSummary[];
  bulkCopy?: number;
  naive?: { eventsPerSecond: number; concurrency: number };
  rate?: Cell;
  zod?: {
    batch: number;
    /** Validation as the function runs it: parse and validate, less `JSON.parse` alone. */
    validateMicros: number;
    /** Of the function processes' CPU per event. */
    ofFunction: number;
    /** Of all Deno CPU per event: the function processes and the gateway. */
    ofDeno: number;
    /** Of all CPU serving the request: Deno and Postgres. */
    ofRequest: number;
  }[];
  targets: Target[];
}

/** The cell with the highest throughput among those that stored anything. */
function best(cells: Cell[]): Cell | undefined {
  return cells.filter((c) => c.events > 0).reduce<Cell | undefined>(
    (top, c) => (!top || c.eventsPerSecond > top.eventsPerSecond ? c : top),
    undefined,
  );
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });

/** Reduces the cells to the best of each path per batch size and checks the targets. */
export function summarize(
  cells: Cell[],
  validation: ValidationCost | undefined,
  soak: SoakResult | undefined,
): Summary {
  const bulk = best(cells.filter((c) => c.path === "copy-bulk"));
  const naive = best(cells.filter((c) => c.path === "naive"));
  const batches = [...new Set(cells.filter((c) => c.path === "http").map((c) => c.batch))]
    .sort((a, b) => a - b);
  const perBatch = batches.map((batch): BatchSummary => {
    const copy = best(cells.filter((c) => c.path === "copy" && c.batch === batch));
    const http = best(cells.filter((c) => c.path === "http" && c.batch === batch));
    const sql = best(cells.filter((c) => c.path === "sql" && c.batch === batch));
    return {
      batch,
      copy: copy && { eventsPerSecond: copy.eventsPerSecond, concurrency: copy.concurrency },
      sql: sql && {
        eventsPerSecond: sql.eventsPerSecond,
        concurrency: sql.concurrency,
        postgresMicrosPerEvent: sql.cpuMicrosPerEvent.postgres,
      },
      http: http && {
        eventsPerSecond: http.eventsPerSecond,
        concurrency: http.concurrency,
        p99: http.latencyMs.p99,
        functionMicrosPerEvent: http.cpuMicrosPerEvent.function,
        gatewayMicrosPerEvent: http.cpuMicrosPerEvent.gateway,
        postgresMicrosPerEvent: http.cpuMicrosPerEvent.postgres,
      },
      httpOverCopy: http && copy ? http.eventsPerSecond / copy.eventsPerSecond : undefined,
      sqlOverCopy: sql && copy ? sql.eventsPerSecond / copy.eventsPerSecond : undefined,
      postgresBoundRatio: http && copy
        ? copy.cpuMicrosPerEvent.postgres / http.cpuMicrosPerEvent.postgres
        : undefined,
      httpOverBulkCopy: http && bulk ? http.eventsPerSecond / bulk.eventsPerSecond : undefined,
      httpOverNaive: http && naive ? http.eventsPerSecond / naive.eventsPerSecond : undefined,
    };
  });
  const rate = cells.find((c) => c.path === "http-rate");
  const large = perBatch.filter((b) => b.batch >= 100 && b.batch <= 500);
  const zod = validation
    ? large.filter((b) => b.http).map((b) => {
      const { functionMicrosPerEvent: fn, gatewayMicrosPerEvent: gw, postgresMicrosPerEvent: pg } =
        b.http!;
      const v = validation.validateParsedMicros;
      return {
        batch: b.batch,
        validateMicros: v,
        ofFunction: v / fn,
        ofDeno: v / (fn + gw),
        ofRequest: v / (fn + gw + pg),
      };
    })
    : undefined;

  const targets: Target[] = [];
  const ratios = large.filter((b) => b.httpOverCopy !== undefined);
  targets.push({
    name: "(b) / (a) at batch 100-500",
    goal: ">= 0.80",
    measured: ratios.length
      ? ratios.map((b) => `${fmt(b.httpOverCopy, 2)} @${b.batch}`).join(", ")
      : "not measured",
    met: ratios.length ? ratios.every((b) => b.httpOverCopy! >= 0.8) : null,
  });
  targets.push({
    name: "p99 at batch 100, half of max throughput",
    goal: "<= 50 ms",
    measured: rate
      ? `${fmt(rate.latencyMs.p99, 1)} ms at ${fmt(rate.eventsPerSecond)} events/s`
      : "not measured",
    met: rate ? rate.latencyMs.p99 <= 50 && rate.errors === 0 : null,
  });
  const naiveRatios = large.filter((b) => b.httpOverNaive !== undefined);
  targets.push({
    name: "(b) / (c) at batch 100-500",
    goal: ">= 20",
    measured: naiveRatios.length
      ? naiveRatios.map((b) => `${fmt(b.httpOverNaive, 1)} @${b.batch}`).join(", ")
      : "not measured",
    met: naiveRatios.length ? naiveRatios.every((b) => b.httpOverNaive! >= 20) : null,
  });
  // Judged on the function's own CPU, the strictest share; with the gateway
  // and Postgres counted too, as shown beside it, the share only falls.
  targets.push({
    name: "zod share of the function's CPU",
    goal: "<= 5%",
    measured: zod?.length
      ? zod.map((z) =>
        `${fmt(z.ofFunction * 100, 1)}% @${z.batch} (${
          fmt(z.validateMicros, 1)
        } µs/ev; of all request CPU ${fmt(z.ofRequest * 100, 1)}%)`
      ).join(", ")
      : "not measured",
    met: zod?.length ? zod.every((z) => z.ofFunction <= 0.05) : null,
  });
  // Flat: judged on the live heap after GC, which is what the function
  // retains; RSS, shown beside it, also moves with V8's heap sizing and the
  // allocator.
  const flat = heapIsFlat(soak?.heap);
  const rssMinima = soak?.rssWindowMinima.map((w) => fmt(w.minMiB, 0)).join(", ");
  targets.push({
    name: "function memory under sustained load",
    goal: `flat live heap after GC: < ${FLAT_HEAP_MIB_PER_MINUTE} MiB/min, ` +
      `3rd -> 4th quarter < ${FLAT_HEAP_QUARTER_CHANGE * 100}%`,
    measured: !soak
      ? "not measured (use --soak 300)"
      : soak.heap
      ? `heap ${fmt(soak.heap.thirdQuarterMiB, 1)} -> ${fmt(soak.heap.lastQuarterMiB, 1)} MiB (${
        fmt(soak.heap.slopeMiBPerMinute, 2)
      } MiB/min) over ${soak.seconds} s; RSS minima ${rssMinima} MiB`
      : `no heap reports (${soak.heapMissing ?? "unknown"}); RSS minima ${rssMinima} MiB`,
    met: soak ? flat : null,
  });
  return {
    perBatch,
    bulkCopy: bulk?.eventsPerSecond,
    naive: naive && { eventsPerSecond: naive.eventsPerSecond, concurrency: naive.concurrency },
    rate,
    zod,
    targets,
  };
}

/** A plain-text table: the first `left` columns aligned left, numbers to the right. */
function table(header: string[], rows: string[][], left = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const pathLabel: Record<PathName, string> = {
  "copy": "(a) COPY",
  "copy-bulk": "(a) COPY bulk",
  "sql": "(b) SQL only",
  "http": "(b) HTTP",
  "http-rate": "(b) HTTP rate",
  "naive": "(c) naive",
  "soak": "(b) soak",
};

/** The terminal report: every measurement, then the summary and the targets. */
export function formatReport(cells: Cell[], summary: Summary): string {
  const rows = cells.map((c) => [
    pathLabel[c.path],
    c.targetRate ? `${fmt(c.batch)} @${fmt(c.targetRate)}/s` : `${fmt(c.batch)} x${c.concurrency}`,
    fmt(c.eventsPerSecond),
    fmt(c.requestsPerSecond),
    fmt(c.latencyMs.p50, 1),
    fmt(c.latencyMs.p95, 1),
    fmt(c.latencyMs.p99, 1),
    c.path.startsWith("http") || c.path === "soak" ? fmt(c.cpuMicrosPerEvent.function, 1) : "-",
    c.path.startsWith("http") || c.path === "soak" ? fmt(c.cpuMicrosPerEvent.gateway, 1) : "-",
    fmt(c.cpuMicrosPerEvent.postgres, 1),
    fmt(c.cpuMicrosPerEvent.loadGenerator, 1),
    fmt(c.cpuSeconds.machineBusy * 100),
    fmt(c.cpuSeconds.background * 100),
    c.path.startsWith("http") || c.path === "soak" ? fmt(c.functionRssMaxMiB) : "-",
    fmt(c.errors),
  ]);
  const out: string[] = [];
  out.push(
    table([
      "path",
      "batch x conc",
      "events/s",
      "req/s",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "fn µs/ev",
      "gw µs/ev",
      "pg µs/ev",
      "gen µs/ev",
      "cpu %",
      "bg %",
      "fn MiB",
      "errors",
    ], rows),
  );
  out.push("");
  out.push(table(
    [
      "batch",
      "best of",
      "(a) COPY ev/s",
      "(b) HTTP ev/s",
      "(b)/(a)",
      "SQL/(a)",
      "pg-bound",
      "(b)/bulk",
      "(b)/(c)",
    ],
    summary.perBatch.map((b) => [
      String(b.batch),
      `a x${b.copy?.concurrency ?? "-"}, b x${b.http?.concurrency ?? "-"}, SQL x${
        b.sql?.concurrency ?? "-"
      }`,
      fmt(b.copy?.eventsPerSecond),
      fmt(b.http?.eventsPerSecond),
      fmt(b.httpOverCopy, 2),
      fmt(b.sqlOverCopy, 2),
      fmt(b.postgresBoundRatio, 2),
      fmt(b.httpOverBulkCopy, 2),
      fmt(b.httpOverNaive, 1),
    ]),
  ));
  out.push(
    `bulk COPY (one transaction): ${fmt(summary.bulkCopy)} events/s; naive per-row inserts: ${
      fmt(summary.naive?.eventsPerSecond)
    } events/s (x${summary.naive?.concurrency ?? "-"})`,
    "SQL/(a): the function's statement (rate-limit charge and ingest_interactions) made " +
      "directly (no HTTP, gateway or function process) " +
      "over COPY, as measured",
    "pg-bound: Postgres CPU per event of (a) / of (b), the (b)/(a) to expect when Postgres " +
      "has its cores to itself",
  );
  out.push("");
  out.push(table(
    ["target", "goal", "measured", "met"],
    summary.targets.map((t) => [
      t.name,
      t.goal,
      t.measured,
      t.met === null ? "n/a" : t.met ? "yes" : "NO",
    ]),
    4,
  ));
  return out.join("\n");
}

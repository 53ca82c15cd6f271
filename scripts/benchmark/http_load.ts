/**
 * The HTTP load generator: POSTs prepared batches to the `track` function the
 * way a fleet of browsers would, either as fast as `concurrency` clients can
 * (closed loop) or at a fixed request rate whatever the server's latency
 * (open loop, latency measured from the moment each request was due, so a
 * slow server cannot hide its queueing).
 *
 * Every answer is checked: a request counts as good only when it is a 200
 * that accepted every event of the batch, with no duplicates or rejections.
 *
 * @example
 * ```ts
 * import { stack, trackUrl } from "../../test_support/stack.ts";
 * import { closedLoop, type RequestSpec } from "./http_load.ts";
 *
 * async function measure(prepared: RequestSpec[]) {
 *   const requests = prepared[Symbol.iterator]();
 *   const next = () => requests.next().value;
 *   const result = await closedLoop(trackUrl, stack.anonKey, next, 8, 5_000);
 *   console.log(result.events / result.wallSeconds, "events/s");
 * }
 * ```
 *
 * @module
 */

/** One prepared request: its body, the bearer token it carries and whom it comes from. */
export interface RequestSpec {
  body: string;
  token: string;
  events: number;
  /** The sender's own HTTP client (its own source address), if any. */
  client?: Deno.HttpClient;
}

/** What a run of requests achieved. */
export interface LoadResult {
  requests: number;
  /** Requests answered 200 with every event accepted. */
  goodRequests: number;
  /** Events accepted by the server. */
  events: number;
  duplicates: number;
  rejected: number;
  wallSeconds: number;
  /**
   * Per request, milliseconds, until its answer or, for a request that got
   * none (an error or the 30 s timeout), until it failed.
   */
  latenciesMs: number[];
  /** When each of those requests was answered or failed, milliseconds since the run started. */
  answeredAtMs: number[];
  /** Answers by HTTP status ("error" when no answer came). */
  statuses: Record<string, number>;
  /** A few examples of what went wrong, for the report. */
  failures: string[];
}

interface TrackAnswer {
  accepted?: number;
  duplicates?: number;
  rejected?: unknown[];
}

/** Sends requests to `url` and records each answer. */
class Recorder {
  readonly result: LoadResult = {
    requests: 0,
    goodRequests: 0,
    events: 0,
    duplicates: 0,
    rejected: 0,
    wallSeconds: 0,
    latenciesMs: [],
    answeredAtMs: [],
    statuses: {},
    failures: [],
  };

  readonly startedAt = performance.now();

  constructor(readonly url: string, readonly apiKey: string) {}

  /** Sends one request; its latency counts from `dueAt` (a `performance.now()` time). */
  async send(spec: RequestSpec, dueAt: number): Promise<void> {
    const r = this.result;
    let status = "error";
    try {
      const response = await fetch(this.url, {
        method: "POST",
        headers: {
          "Authorization": `Bearer ${spec.token}`,
          "apikey": this.apiKey,
          "Content-Type": "application/json",
        },
        body: spec.body,
        signal: AbortSignal.timeout(30_000),
        ...(spec.client ? { client: spec.client } : {}),
      });
      const text = await response.text();
      status = String(response.status);
      const now = performance.now();
      r.latenciesMs.push(now - dueAt);
      r.answeredAtMs.push(now - this.startedAt);
      let answer: TrackAnswer = {};
      try {
        answer = JSON.parse(text);
      } catch { /* reported below */ }
      r.events += answer.accepted ?? 0;
      r.duplicates += answer.duplicates ?? 0;
      r.rejected += answer.rejected?.length ?? 0;
      if (
        response.status === 200 && answer.accepted === spec.events && !answer.duplicates &&
        !answer.rejected?.length
      ) {
        r.goodRequests++;
      } else if (r.failures.length < 5) {
        r.failures.push(`${response.status} ${text.slice(0, 300)}`);
      }
    } catch (error) {
      // No answer (refused, reset, timed out): it still took this long, and
      // leaving it out would make the percentiles read low.
      const now = performance.now();
      r.latenciesMs.push(now - dueAt);
      r.answeredAtMs.push(now - this.startedAt);
      if (r.failures.length < 5) r.failures.push(String(error));
    }
    r.requests++;
    r.statuses[status] = (r.statuses[status] ?? 0) + 1;
  }
}

/**
 * Runs `concurrency` clients, each sending its next request as soon as the
 * previous one is answered, until `durationMs` has passed or `next` runs dry.
 */
export async function closedLoop(
  url: string,
  apiKey: string,
  next: () => RequestSpec | undefined,
  concurrency: number,
  durationMs: number,
): Promise<LoadResult> {
  const recorder = new Recorder(url, apiKey);
  const start = performance.now();
  const end = start + durationMs;
  const client = async () => {
    while (performance.now() < end) {
      const spec = next();
      if (!spec) return;
      await recorder.send(spec, performance.now());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  recorder.result.wallSeconds = (performance.now() - start) / 1000;
  return recorder.result;
}

/**
 * Sends `ratePerSecond` requests at even intervals for `durationMs`, whatever
 * the server's latency, with at most `maxInFlight` open at once (a request
 * that finds them all busy waits, and its wait counts in its latency).
 */
export async function openLoop(
  url: string,
  apiKey: string,
  next: () => RequestSpec | undefined,
  ratePerSecond: number,
  durationMs: number,
  maxInFlight: number,
): Promise<LoadResult> {
  const recorder = new Recorder(url, apiKey);
  const start = performance.now();
  const interval = 1000 / ratePerSecond;
  const total = Math.floor((durationMs / 1000) * ratePerSecond);
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < total; i++) {
    const dueAt = start + i * interval;
    const wait = dueAt - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const spec = next();
    if (!spec) break;
    const request = recorder.send(spec, dueAt).finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  await Promise.all(inFlight);
  recorder.result.wallSeconds = (performance.now() - start) / 1000;
  return recorder.result;
}

import assert from "node:assert/strict";
import type { HeapSample } from "./processes.ts";
import { type Cell, heapIsFlat, type SoakResult, summarize, summarizeHeap } from "./report.ts";
import type { ValidationCost } from "./validation_cost.ts";

/** Samples every 10 s over `seconds`, the live heap given by `heapAt`. */
function heapSamples(seconds: number, heapAt: (t: number) => number): HeapSample[] {
  return Array.from({ length: seconds / 10 + 1 }, (_, i) => ({
    t: i * 10,
    heapUsedMiB: heapAt(i * 10),
    heapTotalMiB: 20,
    externalMiB: 2,
    rssMiB: 170,
    processes: 1,
  }));
}

Deno.test("a live heap that stays level with one spike is flat", () => {
  const heap = summarizeHeap(heapSamples(300, (t) => (t === 160 ? 13.4 : 12.6)), 300);
  assert.equal(heapIsFlat(heap), true);
});

Deno.test("a live heap growing 1 MiB per minute is not flat", () => {
  const heap = summarizeHeap(heapSamples(300, (t) => 12 + t / 60), 300)!;
  assert.ok(Math.abs(heap.slopeMiBPerMinute - 1) < 1e-9);
  assert.equal(heapIsFlat(heap), false);
});

Deno.test("a slow heap growth past 5% from the third to the last quarter is not flat", () => {
  // 0.4 MiB/min is under the slope bound, but 0.5 MiB on about 6 is 8% a quarter.
  const heap = summarizeHeap(heapSamples(300, (t) => 5 + (0.4 * t) / 60), 300)!;
  assert.ok(heap.slopeMiBPerMinute < 0.5);
  assert.equal(heapIsFlat(heap), false);
});

Deno.test("quarters of the heap series split the soak by time, the last one closed", () => {
  const heap = summarizeHeap(heapSamples(60, (t) => t), 60)!;
  // Third quarter [30, 45): 30, 40; last [45, 60]: 50, 60.
  assert.equal(heap.thirdQuarterMiB, 35);
  assert.equal(heap.lastQuarterMiB, 55);
});

Deno.test("without heap samples, memory is not judged", () => {
  assert.equal(summarizeHeap([], 300), undefined);
  assert.equal(heapIsFlat(undefined), null);
});

function cell(path: Cell["path"], batch: number, eventsPerSecond: number, fnMicros = 0): Cell {
  return {
    path,
    batch,
    concurrency: 1,
    requests: 1,
    events: 1000,
    wallSeconds: 1,
    eventsPerSecond,
    requestsPerSecond: eventsPerSecond / batch,
    latencyMs: { p50: 1, p95: 2, p99: 3, max: 4 },
    cpuSeconds: {
      wallSeconds: 1,
      function: 0,
      gateway: 0,
      postgres: 0,
      loadGenerator: 0,
      machineBusy: 0,
      background: 0,
    },
    cpuMicrosPerEvent: { function: fnMicros, gateway: 2, postgres: 30, loadGenerator: 1 },
    functionRssMaxMiB: 170,
    errors: 0,
    failures: [],
  };
}

const validation: ValidationCost = {
  validateParsedMicros: 0.5,
  validateEventMicros: 10,
  jsonParseMicros: 1,
  parseAndValidateMicros: 1.5,
  events: 100,
  invalid: 0,
};

Deno.test("the zod share is judged on validation of parsed JSON, not on validateEvent", () => {
  const cells = [cell("copy", 100, 50_000), cell("http", 100, 20_000, 20)];
  const summary = summarize(cells, validation, undefined);
  assert.equal(summary.zod?.[0].validateMicros, 0.5);
  assert.equal(summary.zod?.[0].ofFunction, 0.5 / 20);
  assert.equal(summary.targets.find((t) => t.name.startsWith("zod"))?.met, true);
});

Deno.test("the memory target is met on a flat heap whatever RSS does", () => {
  const samples = heapSamples(300, () => 12.5);
  const soak: SoakResult = {
    seconds: 300,
    eventsPerSecond: 10_000,
    latencyMs: { p50: 1, p95: 2, p99: 3, max: 4 },
    errors: 0,
    heap: summarizeHeap(samples, 300),
    rssWindowMinima: [157, 170, 180, 190, 199].map((minMiB, i) => ({
      t: i * 60,
      seconds: 60,
      minMiB,
    })),
    firstQuarterMiB: 160,
    thirdQuarterMiB: 180,
    lastQuarterMiB: 199,
    maxMiB: 210,
    slopeMiBPerMinute: 8,
    samples: [],
    checkpoints: 0,
    latencyWindows: [],
  };
  const target = summarize([], undefined, soak).targets.find((t) => t.name.includes("memory"))!;
  assert.equal(target.met, true);
  assert.match(target.measured, /RSS minima 157, 170, 180, 190, 199 MiB/);
});

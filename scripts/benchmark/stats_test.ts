import assert from "node:assert/strict";
import { latencySummary, slope, windowMinima } from "./stats.ts";

Deno.test("latencySummary takes nearest-rank percentiles", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(latencySummary(values), { p50: 50, p95: 95, p99: 99, max: 100 });
});

Deno.test("slope is the least-squares growth of y against x", () => {
  assert.deepEqual(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
  assert.deepEqual(slope([{ x: 0, y: 1 }]), 0);
});

Deno.test("windowMinima keeps the least value of each window, in time order", () => {
  const points = [
    { t: 61, y: 170 },
    { t: 0, y: 160 },
    { t: 30, y: 150 },
    { t: 90, y: 165 },
    { t: 200, y: 190 },
  ];
  assert.deepEqual(windowMinima(points, 60), [
    { t: 0, seconds: 60, min: 150 },
    { t: 60, seconds: 60, min: 165 },
    { t: 180, seconds: 60, min: 190 },
  ]);
});

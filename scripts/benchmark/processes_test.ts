import assert from "node:assert/strict";
import { heapSeries } from "./processes.ts";

const line = (at: number, heapUsedMiB: number) => ({
  at,
  heapUsedMiB,
  heapTotalMiB: 2 * heapUsedMiB,
  externalMiB: 1,
  rssMiB: 100,
});

Deno.test("heapSeries sums each round's answers over the processes that gave them", () => {
  const rounds = [1_000, 11_000, 21_000];
  const first = [line(500, 99), line(1_020, 12), line(11_040, 12.5)]; // 500: an earlier run's
  const second = [line(1_030, 13), line(11_050, 13.5)];
  // nobody answered the last round
  assert.deepEqual(heapSeries(rounds, [first, second]), [
    { t: 0, heapUsedMiB: 25, heapTotalMiB: 50, externalMiB: 2, rssMiB: 200, processes: 2 },
    { t: 10, heapUsedMiB: 26, heapTotalMiB: 52, externalMiB: 2, rssMiB: 200, processes: 2 },
  ]);
});

Deno.test("heapSeries counts a process once in a round even if it answered two", () => {
  // Two rounds sent moments apart: both answers come after the second.
  const rounds = [1_000, 60_000, 60_005];
  const lines = [line(1_010, 12), line(60_020, 12.1), line(60_030, 12.2)];
  assert.deepEqual(heapSeries(rounds, [lines]).map((s) => [s.t, s.heapUsedMiB, s.processes]), [
    [0, 12, 1],
    [59.005, 12.1, 1],
  ]);
});

import assert from "node:assert/strict";
import { bounceRate, engagementScore } from "./score.ts";

interface Vector {
  interactionCount: number;
  durationMs: number;
  expected: number;
}

const { vectors } = JSON.parse(
  await Deno.readTextFile(new URL("./engagement_score_vectors.json", import.meta.url)),
) as { vectors: Vector[] };

Deno.test("engagementScore matches every shared test vector", () => {
  assert.ok(vectors.length >= 40, "the vector file holds the full grid");
  for (const { interactionCount, durationMs, expected } of vectors) {
    assert.equal(
      engagementScore(interactionCount, durationMs),
      expected,
      `engagementScore(${interactionCount}, ${durationMs})`,
    );
  }
});

Deno.test("engagementScore never leaves 0..100 and is 0 without interactions", () => {
  assert.equal(engagementScore(0, 10 * 3_600_000), 0);
  assert.equal(engagementScore(-3, 10 * 3_600_000), 0);
  assert.equal(engagementScore(1_000_000, 100 * 3_600_000), 100);
  // Every count from -2 to 12 against durations around each threshold and far beyond.
  const minutes = [-1, 0, 0.5, 1, 4.9, 5, 14.9, 15, 29.9, 30, 90, 10_000];
  let checked = 0;
  for (let count = -2; count <= 12; count++) {
    for (const m of minutes) {
      const score = engagementScore(count, Math.round(m * 60_000));
      assert.ok(score >= 0 && score <= 100, `engagementScore(${count}, ${m} min) = ${score}`);
      if (count <= 0) assert.equal(score, 0, `no interactions, ${m} min`);
      checked++;
    }
  }
  assert.equal(checked, 15 * minutes.length);
});

Deno.test("bounceRate is 100 for at most one page view, else 0", () => {
  assert.deepEqual([0, 1, 2, 50].map(bounceRate), [100, 100, 0, 0]);
});

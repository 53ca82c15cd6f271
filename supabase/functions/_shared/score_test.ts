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
});

Deno.test("bounceRate is 100 for at most one page view, else 0", () => {
  assert.deepEqual([0, 1, 2, 50].map(bounceRate), [100, 100, 0, 0]);
});

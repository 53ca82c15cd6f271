/**
 * The built bundle: one small ES module holding the client and zod/mini,
 * without supabase-js, exporting the guide's API.
 *
 * Run with: deno test --allow-all client/tests/build_test.ts
 */
import assert from "node:assert/strict";
import { buildClient, stopBundler } from "../build.ts";

const report = await buildClient().finally(stopBundler);

Deno.test("build: the bundle holds only zod from npm, and stays under 25 KiB gzipped", async () => {
  assert.deepEqual(report.packages, ["zod@4.6.7"]);
  assert.ok(report.gzipBytes < 25 * 1024, `${report.gzipBytes} bytes gzipped`);
  assert.ok(report.bytes > report.gzipBytes);
  const code = await Deno.readTextFile(report.path);
  assert.doesNotMatch(code, /supabase-js|GoTrueClient|RealtimeClient/);
});

Deno.test("build: the bundle exports the guide's API, inert until initTracking()", async () => {
  const bundle = await import(`file://${report.path}`);
  assert.deepEqual(Object.keys(bundle).sort(), [
    "createTracker",
    "initTracking",
    "interactionTracker",
    "trackInteraction",
  ]);
  assert.equal(bundle.trackInteraction.view("event", "event-123"), null);
  assert.equal(bundle.interactionTracker.startNewSession(), null);
  assert.deepEqual(bundle.interactionTracker.getSessionMetrics(), {
    duration: 0,
    interactionCount: 0,
    engagementScore: 0,
    pageViews: 0,
    bounceRate: 100,
  });
});

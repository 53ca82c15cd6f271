/**
 * The built bundle: one small ES module holding the client and zod/mini,
 * without supabase-js, exporting the guide's API.
 *
 * Run with: deno test --allow-all client/tests/build_test.ts
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { buildClient, describeBundle, stopBundler } from "../build.ts";

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

Deno.test("build: client/README.md states the bundle's size as the build prints it, near enough", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const stated = readme.match(/^# (client\/dist\/interaction-tracking\.min\.js: .*)$/m)?.[1];
  const built = describeBundle(report);
  // Near, not equal: the shared contract is bundled too, and changes apart from the client.
  const sizes = (line = "") => [...line.matchAll(/([\d.]+) KiB/g)].map((m) => Number(m[1]));
  const [minified, gzipped] = sizes(stated);
  const [builtMinified, builtGzipped] = sizes(built);
  const message =
    `client/README.md, under ## Build, says\n  ${stated}\nthe build prints\n  ${built}`;
  assert.ok(Math.abs(minified - builtMinified) <= 1, message);
  assert.ok(Math.abs(gzipped - builtGzipped) <= 0.5, message);
  assert.equal(stated?.replace(/[\d.]+ KiB/g, "N KiB"), built.replace(/[\d.]+ KiB/g, "N KiB"));
});

/** Runs client/build.ts with `args`; answers its exit code and output, and whether it built. */
async function runBuild(...args: string[]) {
  const before = (await Deno.stat(report.path)).mtime?.getTime();
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", fileURLToPath(new URL("../build.ts", import.meta.url)), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const after = (await Deno.stat(report.path)).mtime?.getTime();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: text(stdout), stderr: text(stderr), built: before !== after };
}

Deno.test("build: --help and -h print the usage and build nothing", async () => {
  for (const flag of ["--help", "-h"]) {
    const { code, stdout, stderr, built } = await runBuild(flag);
    assert.equal(code, 0, flag);
    assert.match(stdout, /^Usage: deno run --allow-all client\/build\.ts\n\nBundles /, flag);
    assert.equal(stderr, "", flag);
    assert.equal(built, false, flag);
  }
});

Deno.test("build: an unknown argument is a usage error, exit 2, and builds nothing", async () => {
  const { code, stdout, stderr, built } = await runBuild("--minify");
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^build: unexpected argument --minify\n\nUsage: deno run --allow-all /);
  assert.equal(built, false);
});

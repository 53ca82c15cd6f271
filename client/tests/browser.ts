/**
 * What the browser tests need: the bundles built as an app would load them,
 * a test page served on loopback, Debian's Chromium driven by playwright-core,
 * a record of every request the pages make to the track function, and the
 * rows those requests left in Postgres.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import type { BrowserContext, Page, Request } from "playwright-core";
import { launchChromium } from "../../test_support/chromium.ts";
import { buildClient, bundle, clientBundle, distDir, stopBundler } from "../build.ts";
import { createUser, sql, stack } from "../../test_support/stack.ts";
import type { Tracker, TrackerError, TrackerOptions } from "../src/mod.ts";

/** The track function behind the local gateway. */
export const trackUrl = `${stack.url}/functions/v1/track`;

const supabaseBundle = `${distDir}/test/supabase.min.js`;
const pageDir = new URL("./page/", import.meta.url);

let bundles: Promise<void> | undefined;

/** Builds the tracker and the test page's supabase-js, once per test run. */
export function buildBundles(): Promise<void> {
  bundles ??= (async () => {
    try {
      await buildClient();
      await bundle(fileURLToPath(new URL("supabase.ts", pageDir)), supabaseBundle);
    } finally {
      await stopBundler();
    }
  })();
  return bundles;
}

/** What a test page exposes to the tests, as `window.page`. */
export interface PageApi {
  tracker: Tracker;
  errors: TrackerError[];
  ready: boolean;
}

/** The page's global scope, inside `page.evaluate`. */
export type TestWindow = typeof globalThis & { page: PageApi };

/** What the page is started with: tracker options (without callbacks) and who is signed in. */
export interface PageConfig {
  options?: Omit<TrackerOptions, "supabase" | "onError" | "storage" | "now" | "random">;
  session?: Record<string, unknown>;
}

/** A POST to the track function, as the browser sent it. */
export interface TrackRequest {
  eventIds: string[];
  authorization: string | undefined;
  page: Page | undefined;
}

/** A browser with one context, the test site, and the track requests seen so far. */
export interface Harness {
  context: BrowserContext;
  requests: TrackRequest[];
  /** Opens the test page in a new tab and waits until its tracker runs. */
  open(config?: PageConfig): Promise<Page>;
  close(): Promise<void>;
}

const types: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  map: "application/json",
};

/** Serves the test page and the bundles on a free loopback port. */
function serveSite(): { origin: string; close: () => Promise<void> } {
  const files: Record<string, string> = {
    "/": fileURLToPath(new URL("index.html", pageDir)),
    "/interaction-tracking.min.js": clientBundle,
    "/interaction-tracking.min.js.map": `${clientBundle}.map`,
    "/supabase.min.js": supabaseBundle,
    "/supabase.min.js.map": `${supabaseBundle}.map`,
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const file = files[new URL(req.url).pathname];
    if (file === undefined) return new Response("not found", { status: 404 });
    const type = types[file.split(".").at(-1)!] ?? "application/octet-stream";
    // A sandboxed frame has an opaque origin: its module scripts load with CORS.
    return new Response(await Deno.readFile(file), {
      headers: { "Content-Type": type, "Access-Control-Allow-Origin": "*" },
    });
  });
  return { origin: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/**
 * The page a request came from. Playwright throws when the frame is not
 * known (a keepalive request of a page already unloaded, say); such a
 * request is still recorded, with no page.
 */
function pageOf(request: Request): Page | undefined {
  try {
    return request.frame()?.page();
  } catch {
    return undefined;
  }
}

/** Launches Chromium with a fresh profile and serves the test page; close() stops both. */
export async function startBrowser(): Promise<Harness> {
  await buildBundles();
  const site = serveSite();
  const browser = await launchChromium();
  const context = await browser.newContext();
  const requests: TrackRequest[] = [];
  context.on("request", (request: Request) => {
    if (request.url() !== trackUrl || request.method() !== "POST") return;
    const body = JSON.parse(request.postData() ?? "{}");
    const events: Array<{ eventId: string }> = body.events ?? [body];
    requests.push({
      eventIds: events.map((event) => event.eventId),
      authorization: request.headers()["authorization"],
      page: pageOf(request),
    });
  });
  return {
    context,
    requests,
    async open(config: PageConfig = {}) {
      const page = await context.newPage();
      const query = encodeURIComponent(
        JSON.stringify({ url: stack.url, anonKey: stack.anonKey, ...config }),
      );
      await page.goto(`${site.origin}/?config=${query}`);
      await waitForTracker(page);
      return page;
    },
    async close() {
      await browser.close();
      await site.close();
    },
  };
}

/** Waits until the page's tracker runs (after a load or a reload). */
export async function waitForTracker(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as TestWindow).page?.ready === true);
}

/** Calls trackInteraction helpers in the page; answers the event ids (null: not tracked). */
export function trackIn(
  page: Page,
  calls: Array<[string, ...unknown[]]>,
): Promise<Array<string | null>> {
  return page.evaluate((calls) => {
    const helpers = (globalThis as TestWindow).page.tracker.trackInteraction as unknown as Record<
      string,
      (...args: unknown[]) => string | null
    >;
    return calls.map(([helper, ...args]) => helpers[helper](...args));
  }, calls);
}

/** `count` valid view events of distinct entities named `${prefix}-${n}`. */
export function views(prefix: string, count: number): Array<[string, ...unknown[]]> {
  return Array.from({ length: count }, (_, n) => ["view", "event", `${prefix}-${n}`]);
}

/** The errors the page's onError received. */
export function errorsIn(page: Page): Promise<TrackerError[]> {
  return page.evaluate(() => (globalThis as TestWindow).page.errors);
}

/** Events waiting in the page's queue. */
export function pendingIn(page: Page): Promise<number> {
  return page.evaluate(() => (globalThis as TestWindow).page.tracker.pendingCount());
}

/**
 * Waits until `count` events wait in the page's queue. The database may
 * hold a batch a moment before the page has read the answer.
 */
export async function waitForPending(page: Page, count: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await pendingIn(page) !== count && Date.now() < deadline) await sleep(50);
  assert.equal(await pendingIn(page), count, "events waiting in the page");
}

/** A signed-in user: a row in auth.users and the session supabase-js keeps for them. */
export async function signedInUser(): Promise<{ id: string; session: Record<string, unknown> }> {
  const user = await createUser();
  const now = Math.floor(Date.now() / 1000);
  return {
    id: user.id,
    session: {
      access_token: user.token,
      refresh_token: "not-used-in-tests",
      token_type: "bearer",
      expires_in: 3600,
      expires_at: now + 3600,
      user: {
        id: user.id,
        aud: "authenticated",
        role: "authenticated",
        email: `${user.id}@example.test`,
        app_metadata: {},
        user_metadata: {},
        created_at: new Date().toISOString(),
      },
    },
  };
}

/** A stored interaction, as the tests check it. */
export interface StoredRow {
  event_id: string;
  user_id: string | null;
  anonymous_id: string | null;
  session_id: string | null;
  entity_id: string;
}

/** The rows stored for these event ids. */
export async function rowsOf(eventIds: readonly string[]): Promise<StoredRow[]> {
  if (eventIds.length === 0) return [];
  return [
    ...await sql<StoredRow[]>`
      select event_id::text, user_id::text, anonymous_id, session_id::text, entity_id
      from public.user_interactions
      where event_id in ${sql(eventIds as string[])}
    `,
  ];
}

/** Waits until every one of `eventIds` is stored (or `timeoutMs` passed); answers the rows. */
export async function waitForRows(
  eventIds: readonly string[],
  timeoutMs = 20_000,
): Promise<StoredRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await rowsOf(eventIds);
    if (rows.length >= eventIds.length || Date.now() > deadline) return rows;
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** Asserts each event id names exactly one stored row, and no row is missing. */
export function assertEachOnce(rows: StoredRow[], eventIds: ReadonlyArray<string | null>): void {
  assert.ok(eventIds.every((id) => typeof id === "string"), "every event was tracked");
  assert.equal(new Set(eventIds).size, eventIds.length, "event ids are distinct");
  assert.deepEqual(
    rows.map((row) => row.event_id).sort(),
    [...eventIds as string[]].sort(),
    "every event is stored exactly once",
  );
}

/** Event ids sent more than once, over all `requests`. */
export function sentTwice(requests: TrackRequest[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of requests.flatMap((request) => request.eventIds)) {
    if (seen.has(id)) twice.add(id);
    seen.add(id);
  }
  return [...twice];
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * The built client in real Chromium against the real local stack: a test page
 * loads the bundle and supabase-js, tracks events, and each scenario ends by
 * checking the rows in Postgres: every event stored exactly once.
 *
 * Run with the stack up:
 *   set -a; source <(scripts/stack env); set +a
 *   deno test --allow-all client/
 */
import assert from "node:assert/strict";
import type { Page, Route } from "playwright-core";
import { integrationTest, sql, stack } from "../../test_support/stack.ts";
import {
  assertEachOnce,
  errorsIn,
  type Harness,
  pendingIn,
  rowsOf,
  sentTwice,
  signedInUser,
  sleep,
  startBrowser,
  type TestWindow,
  trackIn,
  trackUrl,
  views,
  waitForPending,
  waitForRows,
  waitForTracker,
} from "./browser.ts";

/** Runs `scenario` with a fresh browser, closing it afterwards. */
function browserTest(name: string, scenario: (harness: Harness) => Promise<void>): void {
  integrationTest(`browser: ${name}`, async () => {
    const harness = await startBrowser();
    try {
      await scenario(harness);
    } catch (error) {
      // What the pages saw helps to tell a client bug from a stack that was down.
      for (const page of harness.context.pages()) {
        const seen = await errorsIn(page).catch(() => "(page gone)");
        console.error(`errors in ${page.url().slice(0, 40)}: ${JSON.stringify(seen)}`);
      }
      throw error;
    } finally {
      await harness.close();
    }
  });
}

/** Makes the page hidden, as switching to another tab does. */
async function hide(page: Page): Promise<void> {
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
}

browserTest("a batch goes out as soon as batchSize events wait, in one request", async (h) => {
  const page = await h.open({ options: { batchSize: 5, flushIntervalMs: 60_000 } });
  const ids = await trackIn(page, views("size", 5));
  const rows = await waitForRows(ids as string[]);
  assertEachOnce(rows, ids);
  assert.deepEqual(h.requests.map((r) => r.eventIds), [ids]);
  const anonymousId = await page.evaluate(() =>
    (globalThis as TestWindow).page.tracker.getAnonymousId()
  );
  const sessionId = await page.evaluate(() =>
    (globalThis as TestWindow).page.tracker.getSessionId()
  );
  assert.deepEqual(
    rows.map((row) => [row.user_id, row.anonymous_id, row.session_id]),
    ids.map(() => [null, anonymousId, sessionId]),
  );
  // Fewer than batchSize wait for the timer. Tracked before the page has read
  // the first answer, they would go out with the same delivery, which drains
  // the queue: wait for it to end.
  await waitForPending(page, 0);
  const more = await trackIn(page, views("size-more", 3));
  await sleep(1000);
  assert.deepEqual(await rowsOf(more as string[]), []);
  assert.equal(await pendingIn(page), 3);
  assert.deepEqual(await errorsIn(page), []);
});

browserTest("what waits goes out after flushIntervalMs, as the signed-in user", async (h) => {
  const user = await signedInUser();
  const page = await h.open({
    session: user.session,
    options: { batchSize: 100, flushIntervalMs: 1000 },
  });
  const ids = await trackIn(page, [
    ["view", "event", "time-1", { artist_name: "Taylor Swift" }],
    ["like", "artist", "artist-456", true, { artist_name: "The Weeknd" }],
    ["search", "Taylor Swift concerts", "event", "search-results", { results_count: 15 }],
    ["view", "event", "time-2"],
  ]);
  const rows = await waitForRows(ids as string[], 5000);
  assertEachOnce(rows, ids);
  assert.deepEqual(rows.map((row) => row.user_id), ids.map(() => user.id));
  assert.equal(h.requests.length, 1);
  assert.equal(h.requests[0].authorization, `Bearer ${user.session.access_token}`);
  // The live metrics are the ones the session_metrics view computes.
  const metrics = await page.evaluate(() =>
    (globalThis as TestWindow).page.tracker.getSessionMetrics()
  );
  const [view] = await sql`
    select interaction_count, page_views, engagement_score, bounce_rate, duration_ms
    from public.session_metrics where session_id = ${rows[0].session_id}
  `;
  assert.deepEqual(
    {
      interactionCount: view.interaction_count,
      pageViews: view.page_views,
      engagementScore: view.engagement_score,
      bounceRate: Number(view.bounce_rate),
    },
    {
      interactionCount: metrics.interactionCount,
      pageViews: metrics.pageViews,
      engagementScore: metrics.engagementScore,
      bounceRate: metrics.bounceRate,
    },
  );
  assert.deepEqual([metrics.interactionCount, metrics.pageViews], [4, 2]);
  assert.ok(Math.abs(Number(view.duration_ms) - metrics.duration) < 50);
});

browserTest("a backlog queued before a reload is sent by the reloaded page", async (h) => {
  const page = await h.open({
    options: { batchSize: 100, flushIntervalMs: 1000, backoff: { baseMs: 200, maxMs: 1000 } },
  });
  const ids = await trackIn(page, views("reload", 12));
  assert.equal(await pendingIn(page), 12);
  // Nothing gets through until the page has reloaded: not even the keepalive
  // request sent as the old page goes away (routed for the whole context:
  // the old document is gone by the time it leaves).
  const blocked = (route: Route) => route.abort("internetdisconnected");
  await h.context.route(trackUrl, blocked);
  await page.reload();
  await waitForTracker(page);
  // The reloaded page holds the backlog before anything is let through.
  await waitForPending(page, 12);
  assert.deepEqual(await rowsOf(ids as string[]), []);
  await h.context.unroute(trackUrl, blocked);
  const rows = await waitForRows(ids as string[]);
  assertEachOnce(rows, ids);
  await waitForPending(page, 0);
  const last = h.requests.at(-1);
  assert.ok(last, "the reloaded page's request was recorded");
  assert.deepEqual([...last.eventIds].sort(), [...ids as string[]].sort());
});

browserTest("events tracked offline are sent once the browser is back online", async (h) => {
  const page = await h.open({
    options: { batchSize: 3, flushIntervalMs: 500, backoff: { baseMs: 200, maxMs: 1000 } },
  });
  await h.context.setOffline(true);
  const ids = await trackIn(page, views("offline", 7));
  await sleep(1500);
  assert.deepEqual(await rowsOf(ids as string[]), []);
  assert.equal(await pendingIn(page), 7);
  const errors = await errorsIn(page);
  assert.ok(
    errors.length >= 1 && errors.every((e) => e.kind === "network"),
    JSON.stringify(errors),
  );
  await h.context.setOffline(false);
  const rows = await waitForRows(ids as string[]);
  assertEachOnce(rows, ids);
  await waitForPending(page, 0);
});

browserTest("503s with Retry-After are retried until the server recovers", async (h) => {
  const page = await h.open({
    options: { batchSize: 4, flushIntervalMs: 60_000, backoff: { baseMs: 100, maxMs: 400 } },
  });
  let failures = 0;
  await page.route(trackUrl, async (route) => {
    if (route.request().method() !== "POST" || failures >= 3) return await route.continue();
    failures++;
    await route.fulfill({
      status: 503,
      headers: {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Retry-After",
        "Content-Type": "application/json",
        "Retry-After": "1",
      },
      body: JSON.stringify({ error: { code: "database_unavailable", message: "retry later" } }),
    });
  });
  const started = Date.now();
  const ids = await trackIn(page, views("unavailable", 4));
  const rows = await waitForRows(ids as string[]);
  assertEachOnce(rows, ids);
  assert.ok(Date.now() - started >= 3000, "three Retry-After waits of a second");
  assert.equal(failures, 3);
  assert.deepEqual(h.requests.map((r) => r.eventIds), [ids, ids, ids, ids], "the same ids");
  const errors = await errorsIn(page);
  assert.deepEqual(errors.map((e) => [e.kind, (e as { status: number }).status]), [
    ["network", 503],
    ["network", 503],
    ["network", 503],
  ]);
  for (const error of errors) {
    const { retryInMs } = error as { retryInMs: number };
    assert.ok(retryInMs >= 1000 && retryInMs <= 1200, `retry in ${retryInMs} ms`);
  }
});

browserTest("closing the tab sends what waits with a keepalive request", async (h) => {
  const options = { batchSize: 100, flushIntervalMs: 60_000 };
  const page = await h.open({ options });
  const ids = await trackIn(page, views("closing", 7));
  assert.deepEqual(await rowsOf(ids as string[]), []);
  await page.close({ runBeforeUnload: true });
  const rows = await waitForRows(ids as string[]);
  assertEachOnce(rows, ids);
  // The closed page never read the answer: the next page sends the same
  // events again, and the server stores them once.
  const next = await h.open({ options });
  await next.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  assert.equal(await pendingIn(next), 0);
  const resent = h.requests.filter((request) => request.page === next);
  assert.deepEqual(resent.flatMap((r) => r.eventIds).sort(), [...ids as string[]].sort());
  assertEachOnce(await rowsOf(ids as string[]), ids);
});

browserTest("closing the tab sends the events of a request still under way", async (h) => {
  const page = await h.open({ options: { batchSize: 100, flushIntervalMs: 60_000 } });
  // Ordinary requests to the track function hang without reaching it, as a
  // request does that the closing page will cancel; keepalive ones go out.
  await page.evaluate((url) => {
    const send = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      const target = input instanceof Request ? input.url : String(input);
      if (target === url && !init?.keepalive) return new Promise<Response>(() => {});
      return send(input, init);
    };
  }, trackUrl);
  const ids = await trackIn(page, views("closing-under-way", 5));
  await page.evaluate(() => {
    void (globalThis as TestWindow).page.tracker.flush();
  });
  assert.equal(await pendingIn(page), 5);
  await page.close({ runBeforeUnload: true });
  const rows = await waitForRows(ids as string[], 5000);
  assertEachOnce(rows, ids);
});

browserTest(
  "hiding the page sends what waits at once, and its answer empties the queue",
  async (h) => {
    const page = await h.open({ options: { batchSize: 100, flushIntervalMs: 60_000 } });
    const ids = await trackIn(page, views("hidden", 4));
    await hide(page);
    const rows = await waitForRows(ids as string[], 5000);
    assertEachOnce(rows, ids);
    await waitForPending(page, 0);
    assert.deepEqual(h.requests.map((r) => r.eventIds), [ids]);
    assert.deepEqual(await errorsIn(page), []);
  },
);

browserTest(
  "hiding the page sends nothing while the server's Retry-After is in force",
  async (h) => {
    const page = await h.open({ options: { batchSize: 100, flushIntervalMs: 60_000 } });
    await page.route(trackUrl, async (route) => {
      if (route.request().method() !== "POST") return await route.continue();
      await route.fulfill({
        status: 429,
        headers: {
          "Access-Control-Allow-Origin": "*",
          "Access-Control-Expose-Headers": "Retry-After",
          "Content-Type": "application/json",
          "Retry-After": "60",
        },
        body: JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }),
      });
    });
    const ids = await trackIn(page, views("hidden-429", 3));
    await page.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
    assert.equal(h.requests.length, 1);
    await hide(page);
    await sleep(500);
    assert.equal(h.requests.length, 1, "no keepalive request before the minute is up");
    assert.equal(await pendingIn(page), 3);
    const stored = await page.evaluate(() =>
      Object.keys(localStorage)
        .filter((key) => key.startsWith("synth_interactions:queue:"))
        .flatMap((key) => JSON.parse(localStorage.getItem(key)!))
        .map((entry: { event: { eventId: string } }) => entry.event.eventId)
    );
    assert.deepEqual(stored.sort(), [...ids as string[]].sort(), "the events wait in storage");
  },
);

browserTest("hiding the page after a network error sends at once, backoff or not", async (h) => {
  const page = await h.open({
    options: { batchSize: 100, flushIntervalMs: 60_000, backoff: { baseMs: 60_000 } },
  });
  let failed = false;
  await page.route(trackUrl, async (route) => {
    if (route.request().method() !== "POST" || failed) return await route.continue();
    failed = true;
    await route.abort("internetdisconnected");
  });
  const ids = await trackIn(page, views("hidden-offline", 3));
  await page.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  assert.equal(h.requests.length, 1);
  await hide(page);
  const rows = await waitForRows(ids as string[], 5000);
  assertEachOnce(rows, ids);
  assert.deepEqual(h.requests.map((r) => r.eventIds), [ids, ids]);
});

browserTest("two tabs tracking at once never send the same event", async (h) => {
  const options = { batchSize: 5, flushIntervalMs: 300 };
  // A visitor with a tab open opens a second one; then both track at once.
  const first = await h.open({ options });
  const [opening] = await trackIn(first, views("tab0-opening", 1));
  await first.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  const second = await h.open({ options });
  const tracked = await Promise.all(
    [first, second].map(async (page, tab) => {
      const ids: Array<string | null> = [];
      for (let round = 0; round < 6; round++) {
        ids.push(...await trackIn(page, views(`tab${tab}-round${round}`, 1 + round)));
        await sleep(30);
      }
      return ids;
    }),
  );
  tracked[0].unshift(opening);
  const ids = tracked.flat();
  assert.equal(ids.length, 43);
  const rows = await waitForRows(ids as string[]);
  assertEachOnce(rows, ids);
  assert.deepEqual(sentTwice(h.requests), [], "no event was sent twice");
  for (const request of h.requests) {
    const tab = request.page === first ? 0 : 1;
    assert.ok(
      request.eventIds.every((id) => tracked[tab].includes(id)),
      "each tab sends its own events",
    );
  }
  assert.deepEqual([...await errorsIn(first), ...await errorsIn(second)], []);
  // Both tabs are one visit: one session, counted exactly by the server.
  assert.deepEqual([...new Set(rows.map((row) => row.session_id))], [rows[0].session_id]);
  const [session] = await sql`
    select interaction_count, page_views from public.sessions where id = ${rows[0].session_id}
  `;
  assert.deepEqual([session.interaction_count, session.page_views], [43, 43]);
});

browserTest("opting out clears the queue and sends nothing, even after a reload", async (h) => {
  const page = await h.open({ options: { batchSize: 100, flushIntervalMs: 300 } });
  // Tracked and opted out in one go: no timer can send them in between.
  const before = await page.evaluate(() => {
    const { tracker } = (globalThis as TestWindow).page;
    const ids = [1, 2, 3].map((n) => tracker.trackInteraction.view("event", `optout-before-${n}`));
    tracker.optOut();
    return ids;
  });
  await waitForPending(page, 0);
  const queued = await page.evaluate(() =>
    Object.keys(localStorage).filter((key) => key.startsWith("synth_interactions:queue:"))
  );
  assert.deepEqual(queued, []);
  assert.deepEqual(await trackIn(page, views("optout-after", 2)), [null, null]);
  await page.reload();
  await waitForTracker(page);
  assert.deepEqual(await trackIn(page, views("optout-reloaded", 2)), [null, null]);
  await page.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  await sleep(800);
  assert.equal(h.requests.length, 0, "no request at all");
  assert.deepEqual(await rowsOf(before as string[]), []);
  // Opting back in resumes tracking.
  await page.evaluate(() => (globalThis as TestWindow).page.tracker.optIn());
  const after = await trackIn(page, views("optin", 1));
  await page.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  assertEachOnce(await rowsOf(after as string[]), after);
});

browserTest("console logging happens only with synth_debug_interactions = true", async (h) => {
  const page = await h.open({ options: { batchSize: 100, flushIntervalMs: 60_000 } });
  const logged: string[] = [];
  page.on("console", (message) => logged.push(message.text()));
  const quiet = await trackIn(page, [
    ["view", "event", "debug-quiet"],
    ["view", "review", "review-123", { rating: "five" }],
  ]);
  await page.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  assert.equal(logged.length, 0, logged.join("\n"));
  await page.evaluate(() => localStorage.setItem("synth_debug_interactions", "true"));
  const loud = await trackIn(page, [
    ["view", "event", "debug-loud"],
    ["view", "review", "review-123", { rating: "five" }],
  ]);
  await page.evaluate(() => (globalThis as TestWindow).page.tracker.flush());
  assert.deepEqual(quiet.slice(1), [null]);
  assert.deepEqual(loud.slice(1), [null]);
  assert.ok(logged.some((line) => line.startsWith("[interactions] tracked view event debug-loud")));
  assert.ok(
    logged.some((line) =>
      line.startsWith("[interactions] invalid view event: metadata.rating Invalid input")
    ),
  );
  assert.ok(logged.includes("[interactions] sent: 1 accepted, 0 duplicates, 0 rejected"));
  assert.ok(logged.every((line) => line.startsWith("[interactions] ")), logged.join("\n"));
  assertEachOnce(await rowsOf([quiet[0]!, loud[0]!]), [quiet[0], loud[0]]);
});

browserTest(
  "in a sandboxed frame, initTracking() twice still sends every event once",
  async (h) => {
    const page = await h.open({ options: { flushIntervalMs: 60_000 } });
    // A frame with `sandbox="allow-scripts"`: Chromium refuses it localStorage and Web Locks.
    await page.evaluate(({ url, anonKey }) => {
      const frame = document.createElement("iframe");
      frame.sandbox.add("allow-scripts");
      frame.srcdoc = `<script type="module">
      import { createClient } from "${location.origin}/supabase.min.js";
      import * as tracking from "${location.origin}/interaction-tracking.min.js";
      const supabase = createClient(${JSON.stringify(url)}, ${JSON.stringify(anonKey)}, {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      });
      const errors = [];
      const options = {
        supabase,
        batchSize: 100,
        flushIntervalMs: 60000,
        onError: (error) => errors.push(JSON.parse(JSON.stringify(error))),
      };
      let storageRefused = false;
      try {
        localStorage.length;
      } catch {
        storageRefused = true;
      }
      // A component mounted twice: the first tracker is replaced before it sent anything.
      tracking.initTracking(options);
      const ids = ["sandbox-1", "sandbox-2"].map((id) => tracking.trackInteraction.view("event", id));
      const tracker = tracking.initTracking(options);
      ids.push(tracking.trackInteraction.view("event", "sandbox-3"));
      window.page = { tracker, errors, ids, storageRefused, ready: true };
    <\/script>`;
      document.body.append(frame);
    }, { url: stack.url, anonKey: stack.anonKey });
    type FrameWindow = TestWindow & { page: { ids: string[]; storageRefused: boolean } };
    const frame = await (async () => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        for (const candidate of page.frames()) {
          if (candidate === page.mainFrame()) continue;
          const ready = await candidate.evaluate(() =>
            (globalThis as FrameWindow).page?.ready === true
          ).catch(() => false);
          if (ready) return candidate;
        }
        assert.ok(Date.now() < deadline, "the sandboxed frame's tracker started");
        await sleep(50);
      }
    })();
    const { ids, storageRefused } = await frame.evaluate(() => {
      const { ids, storageRefused } = (globalThis as FrameWindow).page;
      return { ids, storageRefused };
    });
    assert.equal(storageRefused, true, "the frame has no localStorage");
    await sleep(200); // the second tracker takes over what the first one left
    await frame.evaluate(() => (globalThis as FrameWindow).page.tracker.flush());
    const rows = await waitForRows(ids, 10_000);
    assertEachOnce(rows, ids);
    assert.deepEqual(sentTwice(h.requests), []);
    const errors = await frame.evaluate(() => (globalThis as FrameWindow).page.errors);
    assert.deepEqual(errors, []);
  },
);

/**
 * The tracker on the real supabase-js client, with the network faked: who
 * the server sees as the sender of each batch, as supabase-js actually sends
 * it.
 */
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { MemoryStorage } from "../src/storage.ts";
import { createTracker, type TrackerError } from "../src/tracker.ts";

const PROJECT_URL = "http://127.0.0.1:9";
const PUBLISHABLE_KEY = "sb_publishable_0123456789abcdefghijkl";
const USER_ID = "6f1c1c1e-8d4b-4c8a-9d59-2f7e1b9f0a11";

function base64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** An access token as Supabase Auth shapes it; the fake server checks no signature. */
const userToken = [
  base64url({ alg: "HS256", typ: "JWT" }),
  base64url({
    sub: USER_ID,
    role: "authenticated",
    aud: "authenticated",
    exp: Math.floor(Date.now() / 1000) + 3600,
  }),
  base64url("signature"),
].join(".");

interface Seen {
  authorization: string | null;
  apikey: string | null;
  eventIds: string[];
}

/**
 * A fake project: Auth answers who the token's user is; the track function
 * stores the events of a user's token or of the project's publishable key
 * (anonymous), and refuses any other bearer with 401, as the real one does.
 */
function fakeProject() {
  const seen: Seen[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const { pathname } = new URL(request.url);
    const json = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), {
        status,
        headers: { "Content-Type": "application/json" },
      });
    if (pathname === "/auth/v1/user") {
      return json(200, { id: USER_ID, aud: "authenticated", role: "authenticated" });
    }
    assert.equal(pathname, "/functions/v1/track");
    const body = await request.json();
    const authorization = request.headers.get("Authorization");
    seen.push({
      authorization,
      apikey: request.headers.get("apikey"),
      eventIds: body.events.map((event: { eventId: string }) => event.eventId),
    });
    // As the track function: the user's token or the project's publishable key.
    if (authorization !== `Bearer ${userToken}` && authorization !== `Bearer ${PUBLISHABLE_KEY}`) {
      return json(401, {
        error: {
          code: "unauthorized",
          message: "the API key is not one of the project's publishable or secret keys",
        },
      });
    }
    return json(200, { accepted: body.events.length, duplicates: 0, rejected: [] });
  };
  return { fetch, seen };
}

Deno.test("supabase-js: an event tracked signed out never goes with the user's token signed in later", async () => {
  const project = fakeProject();
  const supabase = createClient(PROJECT_URL, PUBLISHABLE_KEY, {
    global: { fetch: project.fetch },
    auth: {
      storage: new MemoryStorage(),
      persistSession: true,
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
  });
  const errors: TrackerError[] = [];
  const tracker = createTracker({
    supabase,
    storage: new MemoryStorage(),
    flushIntervalMs: 3_600_000,
    onError: (error) => errors.push(error),
  });
  try {
    assert.equal((await supabase.auth.getSession()).data.session, null);
    await new Promise((done) => setTimeout(done, 0));
    const id = tracker.trackInteraction.view("event", "e1");
    const { error } = await supabase.auth.setSession({
      access_token: userToken,
      refresh_token: "refresh",
    });
    assert.equal(error, null);
    await tracker.flush();
    assert.deepEqual(project.seen, [{
      authorization: `Bearer ${PUBLISHABLE_KEY}`,
      apikey: PUBLISHABLE_KEY,
      eventIds: [id],
    }]);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  } finally {
    tracker.destroy();
  }
});

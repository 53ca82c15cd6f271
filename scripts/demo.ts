/**
 * Fills an empty local stack with a realistic week of traffic, sent the way
 * an app sends it: `createClient(url, key).functions.invoke("track")` from
 * `@supabase/supabase-js`, one client per visitor, signed in or anonymous.
 * Then prints what an analyst would look at first.
 *
 * Usage: deno run --allow-all scripts/demo.ts [--visitors 300] [--summary-only]
 *
 * @module
 */
import { createClient } from "@supabase/supabase-js";
import { createUser, sql, stack } from "../test_support/stack.ts";

const usage = `Usage: deno run --allow-all scripts/demo.ts [--visitors N] [--summary-only]

Sends a week of traffic from N visitors (default 300) through supabase-js when
the local stack's database holds no events yet, then prints a summary from
session_metrics and daily_engagement. --summary-only sends nothing.`;

let visitors = 300;
let summaryOnly = false;
for (let i = 0; i < Deno.args.length; i++) {
  const arg = Deno.args[i];
  if (arg === "-h" || arg === "--help") {
    console.log(usage);
    Deno.exit(0);
  } else if (arg === "--summary-only") {
    summaryOnly = true;
  } else if (arg === "--visitors" && /^[1-9][0-9]*$/.test(Deno.args[i + 1] ?? "")) {
    visitors = Number(Deno.args[++i]);
  } else {
    console.error(`demo: unexpected argument ${arg} (--visitors needs a positive number)\n`);
    console.error(usage);
    Deno.exit(2);
  }
}

const artists = [
  "Taylor Swift",
  "The Weeknd",
  "Phoebe Bridgers",
  "Bad Bunny",
  "Fred again..",
  "Mitski",
];
const venues = [
  { venue_name: "Madison Square Garden", venue_city: "New York", venue_state: "NY" },
  { venue_name: "The Fillmore", venue_city: "San Francisco", venue_state: "CA" },
  { venue_name: "Red Rocks Amphitheatre", venue_city: "Morrison", venue_state: "CO" },
];
const genres = ["pop", "indie", "electronic", "latin", "r&b"];

/**
 * A small deterministic generator per visitor, so two runs tell the same
 * story: one shared by the concurrent visitors would be drawn from in the
 * order the network answers them.
 */
function draws(seed: number) {
  let state = seed >>> 0;
  const rand = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return {
    rand,
    pick: <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)],
    between: (low: number, high: number) => low + Math.floor(rand() * (high - low + 1)),
  };
}
type Draws = ReturnType<typeof draws>;

/**
 * Visitor `index`'s seed, scrambled (murmur3's finalizer): the generator's
 * streams from consecutive seeds would start nearly alike, every visitor
 * drawing the same number of sessions at evenly stepped times.
 */
function seedOf(index: number): number {
  let x = (20261124 + Math.imul(index, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

type DemoEvent = {
  eventId: string;
  sessionId: string;
  anonymousId?: string;
  eventType: string;
  entityType: string;
  entityId: string;
  metadata?: Record<string, unknown>;
  timestamp: string;
};

/** One visit: discovery first, then, for some, the actions that follow. */
function session(
  { rand, pick, between }: Draws,
  signedIn: boolean,
  anonymousId: string | undefined,
  start: number,
): DemoEvent[] {
  const sessionId = crypto.randomUUID();
  const events: DemoEvent[] = [];
  const minutes = pick([0.3, 0.5, 2, 4, 6, 10, 17, 25, 35]);
  const count = Math.max(1, Math.round(minutes * between(1, 3)));
  for (let i = 0; i < count; i++) {
    const at = start + (count === 1 ? 0 : (minutes * 60_000 * i) / (count - 1));
    const artist = pick(artists);
    const venue = pick(venues);
    const eventId = `event-${between(1, 40)}`;
    const roll = rand();
    let event: Omit<DemoEvent, "eventId" | "sessionId" | "timestamp" | "anonymousId">;
    if (i === 0 || roll < 0.4) {
      event = {
        eventType: "view",
        entityType: "event",
        entityId: eventId,
        metadata: { artist_name: artist, venue_name: venue.venue_name, genres: [pick(genres)] },
      };
    } else if (roll < 0.55) {
      event = {
        eventType: "search",
        entityType: "event",
        entityId: "search-results",
        metadata: { query: `${artist} concerts`, results_count: between(0, 40) },
      };
    } else if (roll < 0.62) {
      event = { eventType: "click", entityType: "event", entityId: eventId };
    } else if (roll < 0.7) {
      event = {
        eventType: "click",
        entityType: "artist",
        entityId: `artist-${artists.indexOf(artist)}`,
        metadata: { artist_name: artist },
      };
    } else if (roll < 0.78) {
      event = {
        eventType: "ticket_click",
        entityType: "ticket_link",
        entityId: `ticket-${eventId}`,
        metadata: {
          event_id: eventId,
          price: between(35, 250),
          currency: "USD",
          vendor: "Ticketmaster",
        },
      };
    } else if (roll < 0.84) {
      event = { eventType: "share", entityType: "event", entityId: eventId };
    } else if (roll < 0.9) {
      event = {
        eventType: "navigate",
        entityType: "view",
        entityId: pick(["home", "explore", "calendar"]),
      };
    } else if (signedIn && roll < 0.94) {
      event = {
        eventType: "like",
        entityType: "artist",
        entityId: `artist-${artists.indexOf(artist)}`,
        metadata: { artist_name: artist, liked: true },
      };
    } else if (signedIn && roll < 0.97) {
      event = { eventType: "attendance", entityType: "event", entityId: eventId };
    } else if (signedIn) {
      event = {
        eventType: "review",
        entityType: "review",
        entityId: `review-${crypto.randomUUID().slice(0, 8)}`,
        metadata: { rating: between(3, 5), review_text: "Great show" },
      };
    } else {
      event = { eventType: "swipe", entityType: "event", entityId: eventId };
    }
    events.push({
      eventId: crypto.randomUUID(),
      sessionId,
      anonymousId,
      timestamp: new Date(at).toISOString(),
      ...event,
    });
  }
  return events;
}

async function visitor(index: number): Promise<number> {
  const draw = draws(seedOf(index));
  const signedIn = index % 5 < 2;
  const user = signedIn ? await createUser() : null;
  const anonymousId = signedIn ? undefined : `anon-${crypto.randomUUID()}`;
  const supabase = createClient(stack.url, stack.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: user ? { headers: { Authorization: `Bearer ${user.token}` } } : {},
  });
  let sent = 0;
  for (let s = draw.between(1, 3); s > 0; s--) {
    const start = Date.now() - draw.between(1, 6 * 24 * 60) * 60_000;
    const events = session(draw, signedIn, anonymousId, Math.min(start, Date.now() - 60 * 60_000));
    for (let i = 0; i < events.length; i += 10) {
      const { error } = await supabase.functions.invoke("track", {
        body: { events: events.slice(i, i + 10) },
      });
      if (error) throw new Error(`track answered: ${error.message}`);
      sent += Math.min(10, events.length - i);
    }
  }
  return sent;
}

function progress(done: number, total: number, events: number): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  const line = `  [${bar}] ${done}/${total} visitors, ${events} events`;
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}`));
  } else if (done === total || done % 50 === 0) {
    console.error(line);
  }
}

async function drive(): Promise<void> {
  console.error(
    `Simulating ${visitors} visitors (40% signed in) through functions.invoke("track")`,
  );
  let done = 0;
  let events = 0;
  let next = 0;
  const worker = async () => {
    while (next < visitors) {
      const sent = await visitor(next++);
      events += sent;
      progress(++done, visitors, events);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  if (Deno.stderr.isTerminal()) console.error("");
}

async function summary(): Promise<void> {
  const [totals] = await sql`
    select count(*)::int as sessions,
           coalesce(sum(interaction_count), 0)::int as interactions,
           round(avg(engagement_score), 1)::float as avg_score,
           round(avg(bounce_rate), 1)::float as bounce_rate
    from public.session_metrics
  `;
  console.log(
    `\n${totals.interactions} interactions in ${totals.sessions} sessions; ` +
      `average engagement ${totals.avg_score ?? 0}, bounce rate ${totals.bounce_rate ?? 0}%`,
  );
  const days = await sql`
    select day::text, sessions, users, round(avg_duration_ms / 60000.0, 1)::float as minutes,
           avg_engagement_score::float as score, bounce_rate::float as bounce
    from public.daily_engagement order by day
  `;
  console.log("\n  day          sessions  visitors  avg min  avg score  bounce %");
  for (const d of days) {
    console.log(
      `  ${d.day}  ${String(d.sessions).padStart(8)}  ${String(d.users).padStart(8)}  ` +
        `${String(d.minutes).padStart(7)}  ${String(d.score).padStart(9)}  ${
          String(d.bounce).padStart(8)
        }`,
    );
  }
}

try {
  const [{ count }] = await sql`select count(*)::int as count from public.user_interactions`;
  if (!summaryOnly && count === 0) await drive();
  else if (!summaryOnly) {
    console.error(
      `The database already holds ${count} events (tests and earlier runs leave theirs); ` +
        "no demo traffic sent, and the summary below covers them all. " +
        "For a clean demo: scripts/stack reset, then scripts/start.",
    );
  }
  await summary();
} finally {
  await sql.end();
}

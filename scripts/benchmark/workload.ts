/**
 * The benchmark's traffic: visitors (signed-in users and anonymous browsers),
 * each with a history of sessions, each session a plausible sequence of
 * interactions over every event and entity type, with metadata of the size a
 * real app attaches. The same events feed every phase of the benchmark, so
 * the COPY ceiling, the HTTP path and the naive inserts store the same rows.
 *
 * Generation is deterministic for a given seed, so two runs send the same
 * mix of event types, entity types and metadata sizes.
 *
 * @example
 * ```ts
 * import { stack } from "../../test_support/stack.ts";
 * import { batchesOf, generateWorkload, type Visitor } from "./workload.ts";
 *
 * const visitor: Visitor = {
 *   kind: "anon",
 *   token: stack.anonKey,
 *   anonymousId: "v-1",
 *   address: "127.10.0.1",
 * };
 * const workload = generateWorkload({ visitors: [visitor], eventsPerVisitor: 200, seed: 1 });
 * const batches = batchesOf(workload, 100); // requests of 100 events, visitors interleaved
 * ```
 *
 * @module
 */
import { USER_SPECIFIC_EVENT_TYPES } from "../../supabase/functions/_shared/event_types.ts";

/** Who sends a stream of events: their access token decides how they are stored. */
export interface Visitor {
  kind: "user" | "anon";
  /** The bearer token: a user's access token, or the anon key. */
  token: string;
  /** `auth.users.id`, for a signed-in user. */
  userId?: string;
  /** The browser's anonymous id, for an anonymous visitor. */
  anonymousId?: string;
  /**
   * The visitor's own loopback address (127.x.y.z) to send from: each
   * visitor is then its own caller, as browsers on their own networks are
   * (rate limits key anonymous callers by address).
   */
  address: string;
}

/** One event, as the browser client sends it. */
export interface TrackEvent {
  eventId: string;
  sessionId: string;
  anonymousId?: string;
  eventType: string;
  entityType: string;
  entityId: string;
  metadata: Record<string, unknown>;
  timestamp: string;
}

/** One visitor's events, oldest first, across all their sessions. */
export interface VisitorStream {
  visitor: Visitor;
  events: TrackEvent[];
}

/** A request's worth of events from one visitor. */
export interface Batch {
  visitor: Visitor;
  events: TrackEvent[];
}

/** Everything the benchmark sends, and its shape. */
export interface Workload {
  streams: VisitorStream[];
  events: number;
  sessions: number;
  /** Mean serialized size of an event, in bytes. */
  meanEventBytes: number;
  /** Mean serialized size of an event's metadata, in bytes. */
  meanMetadataBytes: number;
  eventTypes: Record<string, number>;
  entityTypes: Record<string, number>;
}

/** A small, fast, seedable generator (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** A version 4 UUID drawn from `random`, so ids repeat from run to run. */
export function seededUuid(random: () => number): string {
  const b = Array.from({ length: 16 }, () => Math.floor(random() * 256));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.map((x) => hex[x]);
  return `${h.slice(0, 4).join("")}-${h.slice(4, 6).join("")}-${h.slice(6, 8).join("")}-${
    h.slice(8, 10).join("")
  }-${h.slice(10).join("")}`;
}

const firstWords = ["The", "Midnight", "Golden", "Velvet", "Neon", "Silver", "Wild", "Electric"];
const secondWords = ["Owls", "Harbor", "Echoes", "Tigers", "Static", "Parade", "Comets", "Rivers"];
const genreList = [
  "pop",
  "indie",
  "rock",
  "electronic",
  "hip-hop",
  "r&b",
  "latin",
  "jazz",
  "country",
  "metal",
];
const cities = [
  ["New York", "NY"],
  ["Los Angeles", "CA"],
  ["Chicago", "IL"],
  ["Austin", "TX"],
  ["Seattle", "WA"],
  ["Denver", "CO"],
  ["Nashville", "TN"],
  ["Atlanta", "GA"],
] as const;
const venueKinds = ["indoor", "outdoor", "theater", "arena", "club", "amphitheater"];
const vendors = ["Ticketmaster", "AXS", "SeeTickets", "Eventbrite", "DICE"];
const pages = ["home", "discover", "event-detail", "artist-detail", "venue-detail", "search"];
const words = (
  "great show the sound was loud and clear crowd energy amazing setlist long encore " +
  "parking was hard drinks expensive but worth it would go again opener surprised me " +
  "lighting visuals stunning vocals tight band seats far view fine staff friendly"
).split(" ");

/** Draws from the generator: choices, integers and short texts. */
class Draw {
  constructor(readonly random: () => number) {}
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }
  int(low: number, high: number): number {
    return low + Math.floor(this.random() * (high - low + 1));
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  some<T>(items: readonly T[], low: number, high: number): T[] {
    const count = this.int(low, high);
    const chosen = new Set<T>();
    while (chosen.size < count) chosen.add(this.pick(items));
    return [...chosen];
  }
  name(): string {
    return `${this.pick(firstWords)} ${this.pick(secondWords)}`;
  }
  text(low: number, high: number): string {
    const length = this.int(low, high);
    let text = "";
    while (text.length < length) text += (text ? " " : "") + this.pick(words);
    return text.slice(0, length);
  }
  token(length: number): string {
    const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let out = "";
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.random() * alphabet.length)];
    return out;
  }
}

/** Metadata of the kind the guide lists for each entity type, at realistic sizes. */
function metadataFor(d: Draw, entityType: string, eventDay: number): Record<string, unknown> {
  const [city, state] = d.pick(cities);
  switch (entityType) {
    case "event":
      return {
        artist_name: d.name(),
        venue_name: `${d.pick(secondWords)} Hall`,
        event_date: new Date(eventDay).toISOString(),
        genres: d.some(genreList, 1, 3),
        city,
        state,
        country: "US",
        capacity: d.int(200, 20000),
        ticket_price: d.int(2500, 25000) / 100,
        currency: "USD",
      };
    case "artist":
      return {
        artist_name: d.name(),
        genres: d.some(genreList, 1, 3),
        popularity_score: d.int(0, 100),
        spotify_id: d.token(22),
        follower_count: d.int(100, 5_000_000),
        verified: d.chance(0.6),
      };
    case "venue":
      return {
        venue_name: `${d.pick(firstWords)} ${d.pick(secondWords)} ${
          d.pick(["Hall", "Arena", "Club"])
        }`,
        venue_city: city,
        venue_state: state,
        venue_country: "US",
        capacity: d.int(200, 20000),
        venue_type: d.pick(venueKinds),
        coordinates: { lat: d.int(25000, 48000) / 1000, lng: -d.int(70000, 122000) / 1000 },
      };
    case "review":
      return {
        rating: d.int(1, 5),
        review_text: d.text(40, 600),
        likes_count: d.int(0, 200),
        comments_count: d.int(0, 40),
        is_helpful: d.chance(0.7),
        sentiment: d.pick(["positive", "negative", "neutral"]),
        language: "en",
      };
    case "user":
      return { user_name: `fan_${d.token(8)}`, location: `${city}, ${state}` };
    case "profile":
      return {
        profile_type: d.pick(["fan", "artist", "venue"]),
        verification_status: d.pick(["verified", "pending", "unverified"]),
      };
    case "view":
      return {
        page_name: d.pick(pages),
        duration: d.int(500, 180_000),
        scroll_depth: d.int(0, 100),
      };
    case "form":
      return {
        form_type: d.pick(["signup", "newsletter", "contact", "preferences"]),
        success: d.chance(0.9),
        field_count: d.int(2, 12),
      };
    case "ticket_link":
      return {
        price: d.int(2500, 40000) / 100,
        currency: "USD",
        vendor: d.pick(vendors),
        availability: d.pick(["available", "limited", "sold_out"]),
        fees: d.int(300, 2500) / 100,
        url: `https://tickets.example.com/e/${d.token(12)}`,
      };
    case "song":
      return {
        song_name: d.name(),
        artist_names: [d.name()],
        duration_ms: d.int(120_000, 420_000),
      };
    case "album":
      return {
        album_name: d.name(),
        artist_name: d.name(),
        release_date: new Date(eventDay - d.int(30, 3000) * 86_400_000).toISOString().slice(0, 10),
      };
    case "playlist":
      return {
        playlist_name: `${d.pick(genreList)} ${d.pick(["mix", "essentials", "radio"])}`,
        track_count: d.int(10, 300),
        genres: d.some(genreList, 1, 3),
      };
    default:
      return {};
  }
}

/** Event types with the weight of each in a typical session, and what they act on. */
const eventMix: ReadonlyArray<[string, number, readonly string[]]> = [
  ["view", 34, [
    "event",
    "artist",
    "venue",
    "review",
    "user",
    "profile",
    "view",
    "song",
    "album",
    "playlist",
  ]],
  ["click", 18, ["event", "artist", "venue", "song", "album", "playlist"]],
  ["navigate", 10, ["view"]],
  ["search", 6, ["event", "artist", "venue"]],
  ["swipe", 5, ["event", "artist"]],
  ["share", 2, ["event", "artist", "song", "playlist"]],
  ["ticket_click", 3, ["ticket_link"]],
  ["form_submit", 2, ["form"]],
  ["like", 5, ["artist", "event", "song", "album", "playlist", "review"]],
  ["interest", 2, ["event"]],
  ["follow", 2, ["artist", "venue", "user"]],
  ["unfollow", 0.5, ["artist", "venue", "user"]],
  ["review", 1, ["review"]],
  ["comment", 1.5, ["review", "event"]],
  ["profile_update", 0.5, ["profile", "user"]],
  ["attendance", 1, ["event"]],
  ["streaming_top", 2, ["song", "artist", "album"]],
  ["streaming_recent", 3.5, ["song", "artist", "album", "playlist"]],
];
const userOnly = new Set<string>(USER_SPECIFIC_EVENT_TYPES);
const signedInMix = eventMix;
const anonymousMix = eventMix.filter(([type]) => !userOnly.has(type));

function weighted(d: Draw, mix: typeof eventMix): [string, readonly string[]] {
  const total = mix.reduce((sum, [, weight]) => sum + weight, 0);
  let roll = d.random() * total;
  for (const [type, weight, entities] of mix) {
    roll -= weight;
    if (roll < 0) return [type, entities];
  }
  const [type, , entities] = mix[mix.length - 1];
  return [type, entities];
}

/** One interaction: its types, its entity and its metadata. */
function interaction(d: Draw, signedIn: boolean, eventDay: number) {
  const [eventType, entities] = weighted(d, signedIn ? signedInMix : anonymousMix);
  const entityType = d.pick(entities);
  const metadata = metadataFor(d, entityType, eventDay);
  if (eventType === "search") {
    const query = `${d.name()} ${d.pick(["concerts", "tickets", "tour", "near me"])}`;
    metadata.query = query;
    metadata.results_count = d.int(0, 60);
    metadata.filters = d.some(["upcoming", "nearby", "this-weekend", "under-50"], 0, 2);
    return { eventType, entityType, entityId: "search-results", metadata };
  }
  if (d.chance(0.5)) {
    metadata.source = d.pick(["feed", "search", "recommendations", "notification"]);
    metadata.position = d.int(0, 40);
  }
  return { eventType, entityType, entityId: `${entityType}-${d.int(1, 5000)}`, metadata };
}

/** How many events a session holds: many short visits, a few long ones. */
function sessionLength(d: Draw): number {
  return Math.min(120, 2 + Math.floor(-Math.log(1 - d.random()) * 22));
}

/** What to generate. */
export interface WorkloadOptions {
  visitors: Visitor[];
  /** Events per visitor (their sessions are cut to fit). */
  eventsPerVisitor: number;
  seed: number;
  /** "Now", on the client clock: every event happens before it, within a day or so. */
  now?: number;
}

/** Generates each visitor's sessions and events, oldest first. */
export function generateWorkload(options: WorkloadOptions): Workload {
  const d = new Draw(seededRandom(options.seed));
  const now = options.now ?? Date.now();
  const streams: VisitorStream[] = [];
  const eventTypes: Record<string, number> = {};
  const entityTypes: Record<string, number> = {};
  let sessions = 0;
  let bytes = 0;
  let metadataBytes = 0;
  for (const visitor of options.visitors) {
    const events: TrackEvent[] = [];
    const times: number[] = [];
    // Sessions laid end to end; shifted afterwards so the newest event is a minute old.
    let at = 0;
    while (events.length < options.eventsPerVisitor) {
      const sessionId = seededUuid(d.random);
      sessions++;
      const length = Math.min(sessionLength(d), options.eventsPerVisitor - events.length);
      for (let i = 0; i < length; i++) {
        at += d.int(1_000, 40_000);
        times.push(at);
        const eventDay = now + d.int(1, 90) * 86_400_000;
        events.push({
          eventId: seededUuid(d.random),
          sessionId,
          ...(visitor.anonymousId ? { anonymousId: visitor.anonymousId } : {}),
          ...interaction(d, visitor.kind === "user", eventDay),
          timestamp: "",
        });
      }
      at += d.int(3, 60) * 60_000;
    }
    const shift = now - 60_000 - at;
    events.forEach((event, i) => {
      event.timestamp = new Date(times[i] + shift).toISOString();
      eventTypes[event.eventType] = (eventTypes[event.eventType] ?? 0) + 1;
      entityTypes[event.entityType] = (entityTypes[event.entityType] ?? 0) + 1;
      bytes += JSON.stringify(event).length;
      metadataBytes += JSON.stringify(event.metadata).length;
    });
    streams.push({ visitor, events });
  }
  const total = streams.reduce((sum, s) => sum + s.events.length, 0);
  return {
    streams,
    events: total,
    sessions,
    meanEventBytes: Math.round(bytes / total),
    meanMetadataBytes: Math.round(metadataBytes / total),
    eventTypes,
    entityTypes,
  };
}

/**
 * Cuts every visitor's stream into requests of `size` events and interleaves
 * the visitors, so concurrent requests come from different people and
 * sessions, as they do in production.
 */
export function batchesOf(workload: Workload, size: number): Batch[] {
  const perVisitor = workload.streams.map((stream) => {
    const out: Batch[] = [];
    for (let i = 0; i < stream.events.length; i += size) {
      out.push({ visitor: stream.visitor, events: stream.events.slice(i, i + size) });
    }
    return out;
  });
  const batches: Batch[] = [];
  const rounds = Math.max(...perVisitor.map((list) => list.length));
  for (let round = 0; round < rounds; round++) {
    for (const list of perVisitor) if (round < list.length) batches.push(list[round]);
  }
  return batches;
}

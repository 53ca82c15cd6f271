/**
 * Interaction tracking for the browser, on the app's own Supabase client.
 *
 * A page without a bundler loads the same API from the built file,
 * `client/dist/interaction-tracking.min.js` (made by `client/build.ts`); the
 * examples import it from this module, which that file bundles.
 *
 * Either create a tracker and keep it:
 *
 * ```ts
 * import type { SupabaseClient } from "@supabase/supabase-js";
 * import { createTracker } from "./mod.ts";
 *
 * function startTracking(supabase: SupabaseClient) {
 *   const tracker = createTracker({ supabase, functionName: "track" });
 *   tracker.trackInteraction.view("event", "event-123", { artist_name: "Taylor Swift" });
 *   return tracker;
 * }
 * ```
 *
 * or start the page-wide one once and use the guide's singletons anywhere:
 *
 * ```ts
 * import type { SupabaseClient } from "@supabase/supabase-js";
 * import { initTracking, interactionTracker, trackInteraction } from "./mod.ts";
 *
 * function startTracking(supabase: SupabaseClient) {
 *   initTracking({ supabase });
 *   trackInteraction.like("artist", "artist-456", true, { artist_name: "The Weeknd" });
 *   interactionTracker.getSessionMetrics(); // { duration, interactionCount, engagementScore, ... }
 * }
 * ```
 *
 * Before `initTracking()` the singletons track nothing and answer null.
 *
 * @module
 */
import { type InteractionHelpers, interactionHelpers } from "./helpers.ts";
import { browserStorage, forgetVisitor, keys, pageLocalStorage, removeItem } from "./storage.ts";
import type { SessionMetrics } from "./session.ts";
import { createTracker, type Tracker, type TrackerOptions } from "./tracker.ts";

export { createTracker };
export type { SessionMetrics } from "./session.ts";
export type {
  AuthClient,
  AuthSession,
  SupabaseClientLike,
  Tracker,
  TrackerError,
  TrackerOptions,
} from "./tracker.ts";
export type { InteractionHelpers, Metadata } from "./helpers.ts";
export type { EntityType, EventType, FieldError } from "./contract.ts";

let current: Tracker | null = null;

// Before `initTracking()`: what a tracker's optOut() and optIn() do, in the page's storage.
function setOptedOut(optedOut: boolean): void {
  // Forgotten first, in localStorage even when it is full: then it has room
  // for the flag, and the page's storage can be localStorage again.
  const local = pageLocalStorage();
  if (optedOut && local !== null) forgetVisitor(local);
  const storage = browserStorage();
  try {
    if (optedOut) {
      forgetVisitor(storage);
      storage.setItem(keys.optedOut, "true");
    } else {
      // Also where a full localStorage keeps it: the page's memory storage
      // takes an opt-out over from there each time it is asked for.
      if (local !== null) removeItem(local, keys.optedOut);
      storage.removeItem(keys.optedOut);
    }
  } catch {
    // Nowhere to remember it; the tracker, once started, is asked again.
  }
}

/** Starts the page-wide tracker behind `trackInteraction` and `interactionTracker`, replacing any earlier one. */
export function initTracking(options: TrackerOptions): Tracker {
  current?.destroy();
  current = createTracker(options);
  return current;
}

/** The page-wide tracker's helpers, one per event type. */
export const trackInteraction: InteractionHelpers = interactionHelpers(
  (eventType, entityType, entityId, metadata) =>
    current?.track(eventType, entityType, entityId, metadata) ?? null,
);

/** The page-wide tracker's session and delivery controls. */
export const interactionTracker = {
  /** The live metrics of the current session. */
  getSessionMetrics(): SessionMetrics {
    return current?.getSessionMetrics() ??
      { duration: 0, interactionCount: 0, engagementScore: 0, pageViews: 0, bounceRate: 100 };
  },
  /** Ends the current session; answers the new session's id (null before `initTracking()`). */
  startNewSession(): string | null {
    return current?.startNewSession() ?? null;
  },
  /** Sends what waits now. */
  flush(): Promise<void> {
    return current?.flush() ?? Promise.resolve();
  },
  /**
   * Stops collecting and clears every queue, the session and the anonymous id; remembered even
   * before `initTracking()`.
   */
  optOut(): void {
    if (current) current.optOut();
    else setOptedOut(true);
  },
  /** Resumes collecting. */
  optIn(): void {
    if (current) current.optIn();
    else setOptedOut(false);
  },
};

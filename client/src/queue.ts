/**
 * A bounded, durable queue of events waiting to be sent: kept in memory for
 * speed and written to storage under one key so that it survives a reload or
 * a crash. Each tab writes only its own key, so two tabs never overwrite each
 * other's events.
 *
 * When the queue is full the oldest events are dropped, counted and
 * reported, never silently. A full or failing storage drops nothing: the
 * newest events that fit are stored, the others stay in memory only (and
 * are sent from there), and the queue tries storing all of them again at
 * every later write. The problem is reported once, when it starts.
 *
 * @example
 * ```ts
 * import { DurableQueue } from "./queue.ts";
 * import { MemoryStorage } from "./storage.ts";
 *
 * const queue = new DurableQueue<{ eventId: string }>({
 *   storage: new MemoryStorage(),
 *   key: "synth_interactions:queue:tab-1",
 *   maxSize: 1000,
 *   onProblem: (problem) => console.warn(problem),
 * });
 * queue.push({ event: { eventId: crypto.randomUUID() }, userId: null });
 * queue.save();
 * ```
 *
 * @module
 */
import { isQuotaError, type KeyValueStorage, readItem, removeItem } from "./storage.ts";

/** An event waiting to be sent, with the principal it must be sent as. */
export interface QueuedEvent<E extends { eventId: string }> {
  event: E;
  /** The signed-in user the event was tracked for; null when anonymous. */
  userId: string | null;
  /**
   * Tracked before it was known who is signed in: `userId` and the event's
   * session are a guess, to be set right before the event is sent.
   */
  provisional?: true;
}

/** Something the queue had to give up, reported to the application. */
export type QueueProblem =
  | { kind: "dropped"; reason: "queue_full"; count: number }
  | { kind: "storage"; message: string };

/** Where and how much a queue keeps. */
export interface QueueOptions<E extends { eventId: string } = { eventId: string }> {
  storage: KeyValueStorage;
  key: string;
  /** At most this many events are kept; the oldest go first. */
  maxSize: number;
  onProblem?: (problem: QueueProblem) => void;
  /** False to keep events in memory until {@linkcode DurableQueue.attach} is called. */
  attached?: boolean;
  /**
   * When an event was tracked, in epoch milliseconds: events merged in (another tab's queue)
   * take their place by it, so that the queue stays oldest first. Without it they go last.
   */
  trackedAt?: (event: E) => number;
}

/** Reads the queue stored under `key`, skipping anything that is not a queued event. */
export function readQueue<E extends { eventId: string }>(
  storage: KeyValueStorage,
  key: string,
): QueuedEvent<E>[] {
  const text = readItem(storage, key);
  if (text === null) return [];
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(stored)) return [];
  return stored.filter(isQueuedEvent) as QueuedEvent<E>[];
}

function isQueuedEvent(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const { event, userId } = value as { event?: unknown; userId?: unknown };
  return typeof event === "object" && event !== null &&
    typeof (event as { eventId?: unknown }).eventId === "string" &&
    (userId === null || typeof userId === "string");
}

/** A bounded queue of events, mirrored in storage. */
export class DurableQueue<E extends { eventId: string }> {
  readonly key: string;
  readonly maxSize: number;
  #storage: KeyValueStorage;
  #onProblem: (problem: QueueProblem) => void;
  #trackedAt?: (event: E) => number;
  #entries: QueuedEvent<E>[];
  #attached: boolean;
  #saveScheduled = false;
  /** Whether the last write left events unstored (reported once, until one stores them all). */
  #short = false;
  #dropped = 0;

  constructor(options: QueueOptions<E>) {
    this.key = options.key;
    this.maxSize = Math.max(1, Math.floor(options.maxSize));
    this.#storage = options.storage;
    this.#onProblem = options.onProblem ?? (() => {});
    this.#trackedAt = options.trackedAt;
    this.#attached = options.attached ?? true;
    this.#entries = this.#attached ? readQueue<E>(this.#storage, this.key) : [];
    this.#trim();
  }

  /** How many events wait. */
  get size(): number {
    return this.#entries.length;
  }

  /** How many events were dropped since the queue was created. */
  get dropped(): number {
    return this.#dropped;
  }

  /** The waiting events, oldest first. */
  entries(): readonly QueuedEvent<E>[] {
    return this.#entries;
  }

  /** Appends an event; the oldest are dropped beyond `maxSize`. */
  push(entry: QueuedEvent<E>): void {
    this.#entries.push(entry);
    this.#trim();
    this.#scheduleSave();
  }

  /**
   * Adds the events whose ids are not queued yet, each in its place by
   * `trackedAt` (the oldest events are the first sent, and the first dropped
   * when the queue is full); answers how many were new.
   */
  merge(entries: readonly QueuedEvent<E>[]): number {
    const known = new Set(this.#entries.map((entry) => entry.event.eventId));
    const fresh = entries.filter((entry) => !known.has(entry.event.eventId));
    if (fresh.length === 0) return 0;
    this.#entries = this.#interleave(this.#entries, fresh);
    this.#trim();
    this.save();
    return fresh.length;
  }

  /** Puts each of `entries` in the place of the queued event with the same id. */
  replace(entries: readonly QueuedEvent<E>[]): void {
    if (entries.length === 0) return;
    const byId = new Map(entries.map((entry) => [entry.event.eventId, entry]));
    this.#entries = this.#entries.map((entry) => byId.get(entry.event.eventId) ?? entry);
    this.save();
  }

  /** Removes the events with these ids (sent, or given up on). */
  remove(eventIds: Iterable<string>): void {
    const gone = new Set(eventIds);
    const before = this.#entries.length;
    this.#entries = this.#entries.filter((entry) => !gone.has(entry.event.eventId));
    if (this.#entries.length !== before) this.save();
  }

  /** Forgets every event, in memory and in storage. */
  clear(): void {
    this.#entries = [];
    removeItem(this.#storage, this.key);
  }

  /**
   * Starts mirroring to storage: merges what storage already holds under the
   * key and writes the result. Used once the tab owns its key.
   */
  attach(): void {
    if (this.#attached) return;
    this.#attached = true;
    const stored = readQueue<E>(this.#storage, this.key);
    const mine = this.#entries;
    this.#entries = stored;
    if (mine.length > 0) this.merge(mine);
  }

  /**
   * Stops mirroring to storage, for a tab that lets go of its key: the copy
   * stored last stays as it is, for whichever tab takes it over.
   */
  detach(): void {
    this.#attached = false;
  }

  /**
   * Writes the events held in memory under the key, merged with what is
   * stored there, attached or not, and leaves the queue as it was: for a tab
   * that lets go of its key before it ever owned it, whose events would
   * otherwise be lost. Only for a key no other tab owns.
   */
  persist(): void {
    if (this.#attached) {
      this.save();
      return;
    }
    this.attach();
    this.detach();
  }

  /**
   * Writes the queue to storage now: all of it, or the newest part that fits
   * when the storage is full (halving until it does). Nothing is dropped for
   * want of space; what is not written is reported once, until a write
   * stores everything again.
   */
  save(): void {
    if (!this.#attached) return;
    const entries = this.#entries;
    if (entries.length === 0) {
      try {
        this.#storage.removeItem(this.key);
        this.#reportShortfall(0, null);
      } catch (error) {
        this.#reportShortfall(0, error);
      }
      return;
    }
    let stored = entries.length;
    let failure: unknown = null;
    while (stored > 0) {
      try {
        const part = stored === entries.length ? entries : entries.slice(-stored);
        this.#storage.setItem(this.key, JSON.stringify(part));
        break;
      } catch (error) {
        failure = error;
        // A storage failing otherwise will not take less either. What it
        // already holds stays: at worst those events are sent twice, and
        // the server stores them once.
        stored = isQuotaError(error) ? Math.floor(stored / 2) : 0;
      }
    }
    this.#reportShortfall(entries.length - stored, failure);
  }

  #reportShortfall(unstored: number, failure: unknown): void {
    if (failure === null) {
      this.#short = false;
      return;
    }
    if (this.#short) return;
    this.#short = true;
    const cause = isQuotaError(failure)
      ? "the storage is full"
      : `the storage failed: ${failure instanceof Error ? failure.message : String(failure)}`;
    this.#onProblem({
      kind: "storage",
      message: unstored === 0
        ? `${cause}; the stored copy of the queue could not be updated`
        : `${cause}; ${unstored} of ${this.#entries.length} queued events are kept ` +
          "in memory only until it can hold them",
    });
  }

  // Each list keeps its own order; an event tracked at the same time as a
  // queued one, or at an unreadable time, comes after it.
  #interleave(
    queued: QueuedEvent<E>[],
    added: readonly QueuedEvent<E>[],
  ): QueuedEvent<E>[] {
    const trackedAt = this.#trackedAt;
    if (trackedAt === undefined) return [...queued, ...added];
    const merged: QueuedEvent<E>[] = [];
    let next = 0;
    for (const entry of added) {
      const at = trackedAt(entry.event);
      while (next < queued.length && !(at < trackedAt(queued[next].event))) {
        merged.push(queued[next++]);
      }
      merged.push(entry);
    }
    merged.push(...queued.slice(next));
    return merged;
  }

  #trim(): void {
    const excess = this.#entries.length - this.maxSize;
    if (excess <= 0) return;
    this.#entries.splice(0, excess);
    this.#dropped += excess;
    this.#onProblem({ kind: "dropped", reason: "queue_full", count: excess });
  }

  // Events tracked in one burst are written once, at the end of the current
  // task: before any later task (pagehide included) can run.
  #scheduleSave(): void {
    if (this.#saveScheduled) return;
    this.#saveScheduled = true;
    queueMicrotask(() => {
      this.#saveScheduled = false;
      this.save();
    });
  }
}

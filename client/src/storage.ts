/**
 * The key-value storage the tracker keeps its state in: the page's
 * `localStorage` when it works, memory when it does not (storage disabled by
 * the user, a sandboxed frame), so tracking goes on for the life of the page.
 *
 * @example
 * ```ts
 * import { browserStorage, keys } from "./storage.ts";
 *
 * const storage = browserStorage();
 * storage.setItem(keys.anonymousId, crypto.randomUUID());
 * ```
 *
 * @module
 */

/** The part of the Web Storage interface the tracker uses. */
export interface KeyValueStorage {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Every key the tracker writes starts with this prefix. */
export const KEY_PREFIX = "synth_interactions:";

/** The keys the tracker writes. */
export const keys = {
  /** The visitor's persistent anonymous id. */
  anonymousId: `${KEY_PREFIX}anonymous_id`,
  /** The current session and its live counts. */
  session: `${KEY_PREFIX}session`,
  /** "true" once the visitor opted out. */
  optedOut: `${KEY_PREFIX}opted_out`,
  /** Prefix of each tab's queue, followed by the tab id. */
  queuePrefix: `${KEY_PREFIX}queue:`,
  /** Prefix of each tab's lease, where Web Locks are missing. */
  leasePrefix: `${KEY_PREFIX}lease:`,
  /** Prefix of a claim on an abandoned tab's queue, where Web Locks are missing. */
  claimPrefix: `${KEY_PREFIX}claim:`,
} as const;

/** The guide's switch for console logging. */
export const DEBUG_FLAG_KEY = "synth_debug_interactions";

/** A storage that lives in memory only: the fallback, and the storage of unit tests. */
export class MemoryStorage implements KeyValueStorage {
  #items = new Map<string, string>();

  get length(): number {
    return this.#items.size;
  }

  key(index: number): string | null {
    return [...this.#items.keys()][index] ?? null;
  }

  getItem(key: string): string | null {
    return this.#items.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    this.#items.set(key, String(value));
  }

  removeItem(key: string): void {
    this.#items.delete(key);
  }
}

// Where `localStorage` is unusable, the page's one storage: a tracker
// replacing another takes over its queue, and an opt-out made before any
// tracker started is still there when one does.
let pageMemory: MemoryStorage | null = null;

/**
 * The page's `localStorage` if it can be read and written, else one
 * {@linkcode MemoryStorage} for the page, the same at every call, which
 * takes over from a full localStorage the opt-out, the anonymous id and the
 * session it still holds. Reading
 * `window.localStorage` itself throws where storage is blocked, hence the
 * probe.
 *
 * @example
 * ```ts
 * import { browserStorage, keys } from "./storage.ts";
 *
 * browserStorage().setItem(keys.optedOut, "true");
 * browserStorage().getItem(keys.optedOut); // "true", even where localStorage is blocked
 * ```
 */
export function browserStorage(): KeyValueStorage {
  let local: Storage | undefined;
  try {
    local = globalThis.localStorage;
    const probe = `${KEY_PREFIX}probe`;
    local.setItem(probe, "1");
    local.removeItem(probe);
    // An opt-out an earlier tracker of this page could keep only in page
    // memory (localStorage was full then) holds here too.
    if (pageMemory?.getItem(keys.optedOut) === "true") local.setItem(keys.optedOut, "true");
    return local;
  } catch {
    pageMemory ??= new MemoryStorage();
    // Full rather than blocked, localStorage still says whether the visitor
    // opted out, and that holds for the page too. It also still knows the
    // visitor: without their anonymous id and session every page would count
    // a new visitor. Taken where the page has none of its own yet.
    try {
      if (local?.getItem(keys.optedOut) === "true") {
        pageMemory.setItem(keys.optedOut, "true");
      } else {
        for (const key of [keys.anonymousId, keys.session]) {
          const value = local?.getItem(key) ?? null;
          if (value !== null && pageMemory.getItem(key) === null) pageMemory.setItem(key, value);
        }
      }
    } catch {
      // Blocked: there is nothing to read.
    }
    return pageMemory;
  }
}

/**
 * The page's memory storage, if {@linkcode browserStorage} ever had to give
 * it (localStorage full or blocked), else null: for a tracker on
 * localStorage to take over what trackers kept there left.
 */
export function pageMemoryStorage(): KeyValueStorage | null {
  return pageMemory;
}

/**
 * The page's `localStorage` as it is, full or not, to read from or clean up;
 * null where there is none or reading it throws (storage blocked).
 */
export function pageLocalStorage(): KeyValueStorage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** Every key of `storage` that starts with `prefix`. */
export function keysWithPrefix(storage: KeyValueStorage, prefix: string): string[] {
  const found: string[] = [];
  try {
    for (let i = 0; i < storage.length; i++) {
      const key = storage.key(i);
      if (key !== null && key.startsWith(prefix)) found.push(key);
    }
  } catch {
    // A storage that cannot be listed has no keys we can use.
  }
  return found;
}

/** `getItem` that answers null instead of throwing. */
export function readItem(storage: KeyValueStorage, key: string): string | null {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

/** `removeItem` that ignores a failing storage. */
export function removeItem(storage: KeyValueStorage, key: string): void {
  try {
    storage.removeItem(key);
  } catch {
    // Nothing to clean up in a storage that cannot be written.
  }
}

/**
 * Removes everything `storage` keeps about the visitor: every tab's queue,
 * the session and the anonymous id. What the visitor chose (the opt-out)
 * stays.
 *
 * @example
 * ```ts
 * import { browserStorage, forgetVisitor, keys } from "./storage.ts";
 *
 * const storage = browserStorage();
 * forgetVisitor(storage);
 * storage.getItem(keys.anonymousId); // null
 * ```
 */
export function forgetVisitor(storage: KeyValueStorage): void {
  for (const key of keysWithPrefix(storage, keys.queuePrefix)) removeItem(storage, key);
  removeItem(storage, keys.session);
  removeItem(storage, keys.anonymousId);
}

/** True when `error` says the storage is full. */
export function isQuotaError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === "QuotaExceededError" || name === "NS_ERROR_DOM_QUOTA_REACHED" ||
    code === 22 || code === 1014;
}

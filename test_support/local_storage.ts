/**
 * `localStorage` as a browser may hand it to a page, for unit tests in Deno:
 * blocked (a sandboxed frame, site data turned off) or full.
 *
 * @example
 * ```ts
 * import { withLocalStorage, blockedLocalStorage } from "./local_storage.ts";
 *
 * await withLocalStorage(blockedLocalStorage, () => {
 *   // globalThis.localStorage throws a SecurityError here
 * });
 * ```
 *
 * @module
 */

/** A `localStorage` getter that throws, as reading it does where storage is blocked. */
export const blockedLocalStorage: PropertyDescriptor = {
  get() {
    throw new DOMException("The operation is insecure.", "SecurityError");
  },
};

/**
 * Runs `body` with `globalThis.localStorage` defined by `descriptor` (a
 * getter, or `{ value }`), and puts Deno's own back afterwards.
 */
export async function withLocalStorage(
  descriptor: PropertyDescriptor,
  body: () => Promise<void> | void,
): Promise<void> {
  const original = Object.getOwnPropertyDescriptor(globalThis, "localStorage")!;
  Object.defineProperty(globalThis, "localStorage", { ...descriptor, configurable: true });
  try {
    await body();
  } finally {
    Object.defineProperty(globalThis, "localStorage", original);
  }
}

/**
 * A full `localStorage` holding `items`: it reads and removes, and refuses
 * every write with a QuotaExceededError, as a browser's does.
 */
export function fullLocalStorage(items: Map<string, string>): Storage {
  return {
    get length() {
      return items.size;
    },
    key: (index: number) => [...items.keys()][index] ?? null,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: () => {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    },
    removeItem: (key: string) => void items.delete(key),
    clear: () => items.clear(),
  };
}

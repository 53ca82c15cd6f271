import assert from "node:assert/strict";
import { browserStorage, keys } from "./storage.ts";

/** Runs `body` where reading `localStorage` throws, as in a sandboxed frame or with site data blocked. */
function withoutLocalStorage(body: () => void): void {
  const original = Object.getOwnPropertyDescriptor(globalThis, "localStorage")!;
  Object.defineProperty(globalThis, "localStorage", {
    get() {
      throw new DOMException("The operation is insecure.", "SecurityError");
    },
    configurable: true,
  });
  try {
    body();
  } finally {
    Object.defineProperty(globalThis, "localStorage", original);
  }
}

Deno.test("storage: where localStorage is unusable, the whole page shares one memory storage", () => {
  withoutLocalStorage(() => {
    const first = browserStorage();
    first.setItem(keys.optedOut, "true");
    const second = browserStorage();
    assert.equal(second, first);
    assert.equal(second.getItem(keys.optedOut), "true");
    second.removeItem(keys.optedOut);
  });
});

Deno.test("storage: a full localStorage is still the page's storage, and its opt-out holds", () => {
  const original = Object.getOwnPropertyDescriptor(globalThis, "localStorage")!;
  const items = new Map<string, string>([[keys.optedOut, "true"]]);
  const full = {
    get length() {
      return items.size;
    },
    key: (index: number) => [...items.keys()][index] ?? null,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: () => {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    },
    removeItem: (key: string) => void items.delete(key),
  };
  Object.defineProperty(globalThis, "localStorage", { value: full, configurable: true });
  try {
    const storage = browserStorage();
    assert.equal(storage, full);
    assert.equal(storage.getItem(keys.optedOut), "true");
  } finally {
    Object.defineProperty(globalThis, "localStorage", original);
  }
});

import assert from "node:assert/strict";
import {
  blockedLocalStorage,
  fullLocalStorage,
  withLocalStorage,
} from "../../test_support/local_storage.ts";
import { browserStorage, keys } from "./storage.ts";

Deno.test("storage: where localStorage is unusable, the whole page shares one memory storage", async () => {
  await withLocalStorage(blockedLocalStorage, () => {
    const first = browserStorage();
    first.setItem(keys.optedOut, "true");
    const second = browserStorage();
    assert.equal(second, first);
    assert.equal(second.getItem(keys.optedOut), "true");
    second.removeItem(keys.optedOut);
  });
});

Deno.test("storage: a full localStorage is still the page's storage: its opt-out holds, its queues can go", async () => {
  const left = `${keys.queuePrefix}old-tab`;
  const items = new Map<string, string>([[keys.optedOut, "true"], [left, "[]"]]);
  const full = fullLocalStorage(items);
  await withLocalStorage({ value: full }, () => {
    const storage = browserStorage();
    assert.equal(storage, full, "full is not blocked");
    assert.equal(storage.getItem(keys.optedOut), "true");
    storage.removeItem(left);
    assert.equal(items.has(left), false, "what earlier pages left can be removed");
  });
});

Deno.test("storage: a localStorage that refuses writes otherwise than for want of room is not used", async () => {
  const items = new Map<string, string>();
  const refusing = {
    ...fullLocalStorage(items),
    setItem: () => {
      throw new DOMException("The operation is insecure.", "SecurityError");
    },
  };
  await withLocalStorage({ value: refusing }, () => {
    const storage = browserStorage();
    assert.notEqual(storage, refusing);
    storage.setItem(keys.anonymousId, "visitor-1");
    assert.equal(browserStorage().getItem(keys.anonymousId), "visitor-1", "one for the page");
    storage.removeItem(keys.anonymousId);
  });
});

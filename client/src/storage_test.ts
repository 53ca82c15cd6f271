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

Deno.test("storage: where localStorage is full, the page's memory storage keeps its opt-out", async () => {
  const items = new Map<string, string>([[keys.optedOut, "true"]]);
  const full = fullLocalStorage(items);
  await withLocalStorage({ value: full }, () => {
    const storage = browserStorage();
    assert.notEqual(storage, full, "writes go to the page's memory");
    assert.equal(storage.getItem(keys.optedOut), "true");
    storage.setItem(keys.anonymousId, "visitor-1");
    assert.equal(browserStorage().getItem(keys.anonymousId), "visitor-1", "one for the page");
    storage.removeItem(keys.optedOut);
    storage.removeItem(keys.anonymousId);
  });
});

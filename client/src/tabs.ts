/**
 * Which tab may send which queue. Every tab sends only its own queue, so two
 * open tabs never send the same event; a queue left behind by a tab that is
 * gone (closed, reloaded, crashed) is adopted by exactly one live tab.
 *
 * With the Web Locks API each tab holds a lock named after its queue for as
 * long as it lives; the browser releases it when the page goes away, so a
 * free lock means an abandoned queue, and taking it makes the adopter the only
 * one. Where Web Locks are missing (pages not served over https), or the
 * browser refuses them (site data blocked), each tab renews a lease in
 * storage instead, and an adopter stakes a claim and checks that it still
 * holds after a short pause. A storage no other tab can read (the page's
 * memory) needs neither: the trackers of the page own their queues outright,
 * and one takes over what an earlier one left.
 *
 * @example
 * ```ts
 * import { tabCoordinator } from "./tabs.ts";
 *
 * async function takeOver(moveQueue: (from: string, to: string) => void) {
 *   const tabs = tabCoordinator("tab-1", localStorage);
 *   await tabs.claim("tab-1");
 *   // true when tab-0 was gone and its queue is now tab-1's
 *   return await tabs.adopt("tab-0", () => moveQueue("tab-0", "tab-1"));
 * }
 * ```
 *
 * @module
 */
import { keys, keysWithPrefix, type KeyValueStorage, readItem, removeItem } from "./storage.ts";

/** Ownership of tab queues. */
export interface TabCoordinator {
  /** Takes ownership of `tabId`'s queue until the page goes away; resolves once owned. */
  claim(tabId: string): Promise<void>;
  /** Gives up ownership early (the page is being hidden for good, maybe). */
  release(tabId: string): void;
  /** Runs `work` as the sole owner of `tabId`'s queue if nobody owns it; answers whether it ran. */
  adopt(tabId: string, work: () => void | Promise<void>): Promise<boolean>;
}

const lockName = (tabId: string) => `synth_interactions:tab:${tabId}`;

/**
 * Ownership through the Web Locks API. Where the browser refuses the locks
 * (Chromium does, with a SecurityError, wherever it refuses `localStorage`:
 * site data blocked, a sandboxed frame), `fallback` takes over for good.
 */
export class WebLocksCoordinator implements TabCoordinator {
  #locks: LockManager;
  #held = new Map<string, () => void>();
  #fallback: (() => TabCoordinator) | undefined;
  #instead: TabCoordinator | null = null;

  constructor(locks: LockManager, fallback?: () => TabCoordinator) {
    this.#locks = locks;
    this.#fallback = fallback;
  }

  claim(tabId: string): Promise<void> {
    if (this.#instead !== null) return this.#instead.claim(tabId);
    if (this.#held.has(tabId)) return Promise.resolve();
    return new Promise((held, failed) => {
      // The lock lives until release() or until the page is gone.
      this.#locks.request(lockName(tabId), () => {
        held();
        return new Promise<void>((release) => this.#held.set(tabId, release));
      }).catch((error) => {
        const instead = this.#refused();
        if (instead === null) failed(error);
        else instead.claim(tabId).then(held, failed);
      });
    });
  }

  release(tabId: string): void {
    this.#held.get(tabId)?.();
    this.#held.delete(tabId);
    this.#instead?.release(tabId);
  }

  async adopt(tabId: string, work: () => void | Promise<void>): Promise<boolean> {
    if (this.#instead !== null) return await this.#instead.adopt(tabId, work);
    let granted = false;
    try {
      return await this.#locks.request(
        lockName(tabId),
        { ifAvailable: true },
        async (lock) => {
          if (lock === null) return false;
          granted = true;
          await work();
          return true;
        },
      );
    } catch (error) {
      // Refused before the work ran; a failure of the work itself is the caller's.
      const instead = granted ? null : this.#refused();
      if (instead === null) throw error;
      return await instead.adopt(tabId, work);
    }
  }

  // A request rejected before its callback ran: the browser refuses the
  // locks, here for the life of the page.
  #refused(): TabCoordinator | null {
    if (this.#instead === null && this.#fallback !== undefined) this.#instead = this.#fallback();
    return this.#instead;
  }
}

// The queues the page's trackers own, where no other tab can see them.
const ownedInPage = new Set<string>();

/**
 * Ownership among the trackers of one page, for a storage only this page
 * reads (its memory): a tracker owns its queue at once, and a queue no live
 * tracker of the page owns is one a stopped tracker left.
 */
export class PageCoordinator implements TabCoordinator {
  claim(tabId: string): Promise<void> {
    ownedInPage.add(tabId);
    return Promise.resolve();
  }

  release(tabId: string): void {
    ownedInPage.delete(tabId);
  }

  async adopt(tabId: string, work: () => void | Promise<void>): Promise<boolean> {
    if (ownedInPage.has(tabId)) return false;
    // Owned while the work runs: a second adopter finds it taken.
    ownedInPage.add(tabId);
    try {
      await work();
    } finally {
      ownedInPage.delete(tabId);
    }
    return true;
  }
}

/** How the storage leases behave. */
export interface LeaseOptions {
  /** A lease not renewed for this long is abandoned. Hidden tabs renew slowly, hence minutes. */
  leaseMs?: number;
  /** How long an adopter waits before checking that its claim still holds. */
  settleMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Ownership through leases renewed in storage, where Web Locks are missing. */
export class LeaseCoordinator implements TabCoordinator {
  #self: string;
  #storage: KeyValueStorage;
  #leaseMs: number;
  #settleMs: number;
  #now: () => number;
  #sleep: (ms: number) => Promise<void>;
  #renewals = new Map<string, ReturnType<typeof setInterval>>();

  constructor(self: string, storage: KeyValueStorage, options: LeaseOptions = {}) {
    this.#self = self;
    this.#storage = storage;
    this.#leaseMs = options.leaseMs ?? 3 * 60 * 1000;
    this.#settleMs = options.settleMs ?? 50;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms)));
  }

  claim(tabId: string): Promise<void> {
    this.#renew(tabId);
    this.#forgetDeadTabs();
    if (!this.#renewals.has(tabId)) {
      this.#renewals.set(tabId, setInterval(() => this.#renew(tabId), this.#leaseMs / 4));
    }
    return Promise.resolve();
  }

  release(tabId: string): void {
    clearInterval(this.#renewals.get(tabId));
    this.#renewals.delete(tabId);
    removeItem(this.#storage, keys.leasePrefix + tabId);
  }

  async adopt(tabId: string, work: () => void | Promise<void>): Promise<boolean> {
    if (this.#renewals.has(tabId) || this.#fresh(keys.leasePrefix + tabId)) return false;
    const claimKey = keys.claimPrefix + tabId;
    if (this.#fresh(claimKey)) return false;
    const stake = `${this.#now()}|${this.#self}|${Math.random()}`;
    try {
      this.#storage.setItem(claimKey, stake);
    } catch {
      return false;
    }
    await this.#sleep(this.#settleMs);
    if (readItem(this.#storage, claimKey) !== stake) return false;
    try {
      await work();
    } finally {
      removeItem(this.#storage, claimKey);
      removeItem(this.#storage, keys.leasePrefix + tabId);
    }
    return true;
  }

  // Leases of tabs that died with nothing queued, and claims of adopters
  // that died mid-way, would otherwise stay in storage for good. A stale
  // lease with a queue stays: adopting the queue removes it.
  #forgetDeadTabs(): void {
    for (const key of keysWithPrefix(this.#storage, keys.leasePrefix)) {
      const tabId = key.slice(keys.leasePrefix.length);
      if (this.#renewals.has(tabId) || this.#fresh(key)) continue;
      if (readItem(this.#storage, keys.queuePrefix + tabId) === null) {
        removeItem(this.#storage, key);
      }
    }
    for (const key of keysWithPrefix(this.#storage, keys.claimPrefix)) {
      if (!this.#fresh(key)) removeItem(this.#storage, key);
    }
  }

  #renew(tabId: string): void {
    try {
      this.#storage.setItem(keys.leasePrefix + tabId, String(this.#now()));
    } catch {
      // A lease that cannot be written expires; the worst outcome is an
      // event sent twice, which the server stores once.
    }
  }

  // A lease or claim stamped less than a lease period ago.
  #fresh(key: string): boolean {
    const stamp = Number.parseInt(readItem(this.#storage, key) ?? "", 10);
    return Number.isFinite(stamp) && this.#now() - stamp < this.#leaseMs;
  }
}

/**
 * Within the page for a storage only it reads (`pageOnly`); otherwise Web
 * Locks where the browser has them and lets the page use them, storage
 * leases elsewhere.
 */
export function tabCoordinator(
  self: string,
  storage: KeyValueStorage,
  pageOnly = false,
): TabCoordinator {
  if (pageOnly) return new PageCoordinator();
  const locks = webLocks();
  const leases = () => new LeaseCoordinator(self, storage);
  return locks ? new WebLocksCoordinator(locks, leases) : leases();
}

/** The browser's Web Locks, if it has them. */
export function webLocks(): LockManager | undefined {
  return (globalThis.navigator as Navigator | undefined)?.locks;
}

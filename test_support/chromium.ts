/**
 * Debian's Chromium, driven by playwright-core, for the tests that need a
 * real browser. Playwright cannot download its own browsers here, so the
 * system one is used, with the flags that keep it off the network.
 *
 * @example
 * ```ts
 * import { launchChromium } from "./chromium.ts";
 *
 * async function titleOf(url: string): Promise<string> {
 *   const browser = await launchChromium();
 *   try {
 *     const page = await browser.newPage();
 *     await page.goto(url);
 *     return await page.title();
 *   } finally {
 *     await browser.close();
 *   }
 * }
 * ```
 *
 * @module
 */
import { type Browser, chromium } from "playwright-core";

/** Launches headless Chromium from /usr/bin/chromium with a fresh profile. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/**
 * Chart.js, the page's one npm package (pinned in deno.json); it only ever
 * runs in the browser bundle (see `../bundle.ts`).
 *
 * @module
 */
export * from "chart.js";

/**
 * Random UUIDs (version 4) for event, session, tab and anonymous ids.
 * `crypto.randomUUID()` exists only on pages served over https (or from
 * localhost); elsewhere the same id is built from `crypto.getRandomValues()`,
 * which every page has.
 *
 * @example
 * ```ts
 * import { randomId } from "./ids.ts";
 *
 * const eventId = randomId(); // "3b241101-e2bb-4255-8caf-4136c566a962"
 * ```
 *
 * @module
 */

/** The part of Web Crypto the ids come from. */
export type RandomSource = Pick<Crypto, "getRandomValues"> & Partial<Pick<Crypto, "randomUUID">>;

/** A new random version 4 UUID. */
export function randomId(source: RandomSource = globalThis.crypto): string {
  if (typeof source.randomUUID === "function") return source.randomUUID();
  const bytes = source.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

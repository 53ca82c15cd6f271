/**
 * The CPU cost of the contract's zod validation, measured in process on the
 * very events the benchmark sends: the whole body path the function runs
 * before its database call (`parseJson` plus `parseTrackBody`) per event, at
 * a given batch size, less `JSON.parse` of the same bodies, which is
 * validation as the function runs it; and, for information, `validateEvent`
 * per event on the generator's objects. It runs in a worker of
 * its own, whose fresh heap is like the function process's rather than the
 * load generator's, which holds the whole workload.
 *
 * Compared with the function processes' CPU per event measured under load,
 * it tells what share of a request's CPU goes to validation.
 *
 * @example
 * ```ts
 * import { measureValidation } from "./validation_cost.ts";
 * import type { Batch } from "./workload.ts";
 *
 * async function costOf(batches: Batch[]) {
 *   const events = batches.flatMap((batch) => batch.events);
 *   const bodies = batches.map((batch) => JSON.stringify({ events: batch.events }));
 *   const cost = await measureValidation(events, bodies, events.length, 1_000);
 *   console.log(cost.validateParsedMicros, "µs per event");
 * }
 * ```
 *
 * @module
 */
import process from "node:process";
import {
  parseJson,
  parseTrackBody,
  validateEvent,
} from "../../supabase/functions/_shared/schemas.ts";
import type { TrackEvent } from "./workload.ts";

/** Microseconds of CPU per event. */
export interface ValidationCost {
  /**
   * Validation as the function runs it: `parseAndValidateMicros` less
   * `jsonParseMicros`, on objects `JSON.parse` made from the bodies it
   * receives. The zod share of the function's CPU is judged on this.
   */
  validateParsedMicros: number;
  /**
   * `validateEvent` on the generator's own event objects, for information:
   * their shapes (hidden classes) differ from those `JSON.parse` makes, so it
   * reads higher or lower than validation as the function runs it.
   */
  validateEventMicros: number;
  /** `JSON.parse` of a batch body (the floor of `parseJson`), per event in it. */
  jsonParseMicros: number;
  /** `parseJson` plus `parseTrackBody` of a batch body, per event in it. */
  parseAndValidateMicros: number;
  /** Events each figure was measured over. */
  events: number;
  /** Events `validateEvent` refused: must be 0, or the workload is not what the function accepts. */
  invalid: number;
  /** The first refusal, to fix the workload with. */
  firstInvalid?: string;
}

/** CPU microseconds this process spent in `fn` (user + system). */
function cpuMicros(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return used.user + used.system;
}

/**
 * Measures, after a warm-up pass, over at least `minMs` of work each: the
 * per-event cost of `validateEvent` on `events` and of parsing and validating
 * `bodies` (serialized batches holding `eventsInBodies` events in all).
 */
function measureHere(
  events: TrackEvent[],
  bodies: string[],
  eventsInBodies: number,
  minMs: number,
): ValidationCost {
  let invalid = 0;
  let firstInvalid: string | undefined;
  for (const event of events) {
    const result = validateEvent(event);
    if (!result.ok) {
      invalid++;
      firstInvalid ??= `${event.eventType}/${event.entityType}: ${JSON.stringify(result.errors)}`;
    }
  }
  const repeat = (fn: () => void, units: number) => {
    fn(); // warm-up: let the JIT settle
    let micros = 0;
    let done = 0;
    while (micros < minMs * 1000) {
      micros += cpuMicros(fn);
      done += units;
    }
    return micros / done;
  };
  const validateEventMicros = repeat(() => {
    for (const event of events) validateEvent(event);
  }, events.length);
  const jsonParseMicros = repeat(() => {
    for (const body of bodies) JSON.parse(body);
  }, eventsInBodies);
  const parseAndValidateMicros = repeat(() => {
    for (const body of bodies) parseTrackBody(parseJson(body));
  }, eventsInBodies);
  return {
    validateParsedMicros: Math.max(0, parseAndValidateMicros - jsonParseMicros),
    validateEventMicros,
    jsonParseMicros,
    parseAndValidateMicros,
    events: events.length,
    invalid,
    firstInvalid,
  };
}

interface Job {
  events: TrackEvent[];
  bodies: string[];
  eventsInBodies: number;
  minMs: number;
}

/**
 * {@link measureHere} in a worker of its own. The main thread waits
 * meanwhile, so the process's CPU time is the worker's.
 */
export function measureValidation(
  events: TrackEvent[],
  bodies: string[],
  eventsInBodies: number,
  minMs: number,
): Promise<ValidationCost> {
  const worker = new Worker(import.meta.url, { type: "module" });
  return new Promise<ValidationCost>((resolve, reject) => {
    worker.onmessage = (message: MessageEvent<ValidationCost>) => resolve(message.data);
    worker.onerror = (error) => {
      error.preventDefault();
      reject(new Error(`validation worker: ${error.message}`));
    };
    worker.postMessage({ events, bodies, eventsInBodies, minMs } satisfies Job);
  }).finally(() => worker.terminate());
}

// As the worker: measure what the main thread sends.
const scope = globalThis as unknown as {
  WorkerGlobalScope?: new () => unknown;
  onmessage: ((message: MessageEvent<Job>) => void) | null;
  postMessage(data: ValidationCost): void;
};
if (scope.WorkerGlobalScope && globalThis instanceof scope.WorkerGlobalScope) {
  scope.onmessage = ({ data }) => {
    scope.postMessage(measureHere(data.events, data.bodies, data.eventsInBodies, data.minMs));
  };
}

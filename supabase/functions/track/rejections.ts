/**
 * How much of a request's refusals the `track` function reports.
 *
 * Each refused event lists up to 10 errors, and a path may be 32 segments of
 * 64 characters: a request of events whose metadata shares a long prefix of
 * keys and breaks in many leaves would come back, and be logged in
 * `system_errors`, several times larger than it was sent. The report is
 * bounded instead: the errors of the first events are listed in full up to
 * {@link REPORT_BUDGET} characters of paths and messages; every event after
 * that keeps its first error (its path cut to {@link SHORT_PATH} characters)
 * and a count of the others. Every refused event is still listed, with its
 * index and eventId, so the client learns which events were refused whatever
 * the size of the report.
 *
 * @example
 * ```ts
 * import { boundRejections } from "./rejections.ts";
 *
 * const report = boundRejections([
 *   { index: 0, errors: [{ path: "eventType", message: "Invalid option" }] },
 * ]);
 * // the same list: far below the budget
 * ```
 *
 * @module
 */
import type { FieldError, RejectedEvent } from "../_shared/schemas.ts";

/** Characters of paths and messages listed in full, over the whole request. */
export const REPORT_BUDGET = 64 * 1024;

/** Characters of a path past the budget; longer ones end in "…". */
export const SHORT_PATH = 64;

const size = (errors: readonly FieldError[]) =>
  errors.reduce((total, error) => total + error.path.length + error.message.length, 0);

/**
 * The refused events of a request in index order, their errors listed in
 * full until {@link REPORT_BUDGET} is spent and shortened after it.
 */
export function boundRejections(rejected: readonly RejectedEvent[]): RejectedEvent[] {
  const ordered = [...rejected].sort((a, b) => a.index - b.index);
  let left = REPORT_BUDGET;
  return ordered.map((event) => {
    const full = size(event.errors);
    if (full <= left) {
      left -= full;
      return event;
    }
    left = 0;
    const [first, ...others] = event.errors;
    if (!first) return event;
    const path = first.path.length > SHORT_PATH
      ? `${first.path.slice(0, SHORT_PATH - 1).toWellFormed()}…`
      : first.path;
    const errors: FieldError[] = [{ path, message: first.message }];
    if (others.length > 0) {
      errors.push({
        path: "",
        message: `and ${others.length} more not listed: the request's error report is full`,
      });
    }
    return { ...event, errors };
  });
}

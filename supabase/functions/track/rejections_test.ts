import assert from "node:assert/strict";
import type { RejectedEvent } from "../_shared/schemas.ts";
import { boundRejections, REPORT_BUDGET, SHORT_PATH } from "./rejections.ts";

/** A refused event with `count` errors whose paths are `pathLength` characters long. */
function refused(index: number, count: number, pathLength: number): RejectedEvent {
  return {
    index,
    eventId: `id-${index}`,
    errors: Array.from({ length: count }, (_, n) => ({
      path: `${n}`.padStart(pathLength, "p"),
      message: "must not contain \\u0000 or an unpaired surrogate",
    })),
  };
}

const reportSize = (report: RejectedEvent[]) =>
  report.reduce(
    (total, event) =>
      total +
      event.errors.reduce((sum, error) => sum + error.path.length + error.message.length, 0),
    0,
  );

Deno.test("a report within the budget is the refused events, in index order", () => {
  const events = [refused(3, 2, 20), refused(0, 10, 40), refused(7, 1, 8)];
  assert.deepEqual(boundRejections(events), [events[1], events[0], events[2]]);
});

Deno.test("past the budget, each event keeps its first error, its path cut, and a count", () => {
  // About 19,500 characters per event: the first three fit.
  const events = Array.from({ length: 500 }, (_, index) => refused(index, 10, 1900));
  const report = boundRejections(events);

  assert.deepEqual(
    report.map((event) => [event.index, event.eventId]),
    events.map((event) => [event.index, event.eventId]),
  );
  assert.deepEqual(report.slice(0, 3), events.slice(0, 3));
  for (const event of report.slice(3)) {
    assert.equal(event.errors.length, 2);
    assert.equal(event.errors[0].path.length, SHORT_PATH);
    assert.ok(event.errors[0].path.endsWith("…"));
    assert.equal(event.errors[0].message, events[0].errors[0].message);
    assert.deepEqual(event.errors[1], {
      path: "",
      message: "and 9 more not listed: the request's error report is full",
    });
  }
  // The whole report: the budget, plus under 200 characters per later event.
  assert.ok(reportSize(report) < REPORT_BUDGET + 200 * 497, `${reportSize(report)}`);
});

Deno.test("an event with one short error past the budget is listed as it was", () => {
  const events = [refused(0, 1, REPORT_BUDGET), refused(1, 1, 9)];
  const report = boundRejections(events);
  assert.equal(report[0].errors.length, 1);
  assert.equal(report[0].errors[0].path.length, SHORT_PATH);
  assert.deepEqual(report[1], events[1]);
});

Deno.test("a path cut in a surrogate pair stays well formed", () => {
  const path = `${"p".repeat(SHORT_PATH - 2)}😀${"q".repeat(100)}`;
  const [event] = boundRejections([
    {
      index: 0,
      errors: [{ path, message: "m" }, { path: "x".repeat(REPORT_BUDGET), message: "m" }],
    },
  ]);
  assert.ok(event.errors[0].path.isWellFormed());
  assert.equal(event.errors[0].path.length, SHORT_PATH);
});

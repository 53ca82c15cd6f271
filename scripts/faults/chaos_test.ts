/**
 * The short form of the fault-injection run (`scripts/chaos --short`), on a
 * stack of its own (STACK_NAME=chaos-short, ports 25322 and 25321) that it
 * brings down afterwards: every kind of fault strikes once, and afterwards
 * nothing is lost or duplicated and the function always answered in time.
 */
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import type { ChaosReport } from "./main.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const mayRun = Deno.permissions.querySync({ name: "run" }).state === "granted";

Deno.test({
  name: "chaos (short): under every fault, each event is stored exactly once and 503s say when",
  ignore: !mayRun,
  fn: async () => {
    const reportFile = await Deno.makeTempFile({ prefix: "chaos-report-", suffix: ".json" });
    try {
      const { code, stdout, stderr } = await new Deno.Command(`${root}scripts/chaos`, {
        args: ["--short", "--report", reportFile],
        cwd: root,
        env: { STACK_NAME: "chaos-short", DB_PORT: "25322", API_PORT: "25321", NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const output = new TextDecoder().decode(stdout);
      assert.equal(
        code,
        0,
        `scripts/chaos --short failed:\n${output}\n${new TextDecoder().decode(stderr)}`,
      );
      const report = JSON.parse(await Deno.readTextFile(reportFile)) as ChaosReport;

      assert.deepEqual(report.failures, []);
      assert.ok(report.created > 500, `only ${report.created} events were created`);
      assert.match(
        output,
        new RegExp(
          `created ${report.created}  acknowledged ${report.created}  stored ${report.created}  ` +
            "lost 0  duplicated 0",
        ),
      );
      assert.deepEqual(
        {
          lost: report.lost,
          duplicated: report.duplicated,
          stored: report.stored,
          acknowledged: report.acknowledged,
          misattributed: report.misattributed,
          undelivered: report.undelivered,
          sessionsMismatched: report.sessions.mismatched,
        },
        {
          lost: 0,
          duplicated: 0,
          stored: report.created,
          acknowledged: report.created,
          misattributed: 0,
          undelivered: 0,
          sessionsMismatched: 0,
        },
      );
      assert.ok(report.sessions.checked >= report.visitors);

      // The faults did strike, each as often as armed.
      assert.deepEqual(
        {
          databaseAnswersCut: report.proxies.database.responsesCut,
          databaseQueriesCut: report.proxies.database.requestsCut,
          httpAnswersCut: report.proxies.http.responsesCut,
          httpRequestsCut: report.proxies.http.requestsCut,
        },
        { databaseAnswersCut: 3, databaseQueriesCut: 2, httpAnswersCut: 3, httpRequestsCut: 2 },
      );
      assert.ok(report.proxies.database.dropped >= 1);
      // Events whose answer was lost came back, and were recognised as duplicates.
      assert.ok(report.answers.duplicateAnswers > 0);

      // The function kept answering: 503s with Retry-After, nothing hung or late, no 500.
      assert.ok((report.answers.statuses["503"] ?? 0) > 0, "no 503 was seen");
      assert.deepEqual(
        {
          hung: report.answers.hung,
          late: report.answers.late,
          unavailableWithoutRetryAfter: report.answers.unavailableWithoutRetryAfter,
          internalErrors: report.answers.internalErrors,
        },
        { hung: 0, late: 0, unavailableWithoutRetryAfter: 0, internalErrors: 0 },
      );
      assert.ok(report.answers.maxLatencyMs <= report.answerBoundMs);
      for (const phase of report.phases) {
        assert.notEqual(phase.recoveredInMs, null, `no recovery after "${phase.name}"`);
      }
    } finally {
      await Deno.remove(reportFile).catch(() => {});
    }
  },
});

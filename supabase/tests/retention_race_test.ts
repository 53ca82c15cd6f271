/**
 * Retention against a concurrent ingestion. `maintain_interaction_partitions`
 * recounts the sessions that began before its cutoff; an ingestion adding an
 * event to one of them commits while the recount waits for that session's
 * lock. The recount must count that event: the session's figures equal its
 * rows afterwards. (pgTAP runs on one connection; this needs two.)
 *
 * The maintenance runs in a transaction that is rolled back, and the rows the
 * ingestion committed are deleted afterwards.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { integrationTest, stack } from "../../test_support/stack.ts";

const RETENTION = "2 months";

integrationTest(
  "retention: a session recount counts the events an ingestion commits meanwhile",
  async () => {
    const ingesting = postgres(stack.dbUrl, { max: 1, onnotice: () => {}, prepare: false });
    const maintaining = postgres(stack.dbUrl, { max: 1, onnotice: () => {}, prepare: false });
    const watching = postgres(stack.dbUrl, { max: 1, onnotice: () => {}, prepare: false });
    const sessionId = crypto.randomUUID();
    const anonymousId = `retention-race-${sessionId.slice(0, 8)}`;
    const eventIds: string[] = [];
    const [{ cutoff }] = await watching<{ cutoff: Date }[]>`
      select date_trunc('month', now() - ${RETENTION}::interval, 'UTC') as cutoff
    `;
    const event = (index: number, occurredAt: Date, eventType = "view") => {
      const eventId = crypto.randomUUID();
      eventIds.push(eventId);
      return {
        index,
        event_id: eventId,
        session_id: sessionId,
        anonymous_id: anonymousId,
        event_type: eventType,
        entity_type: "event",
        entity_id: "event-1",
        metadata: {},
        occurred_at: occurredAt.toISOString(),
        client_timestamp: null,
        received_at: new Date().toISOString(),
      };
    };
    const day = 86_400_000;
    const ingest = (db: postgres.Sql, events: unknown[]) =>
      db`
        select outcome from public.ingest_interactions(
          null, ${JSON.stringify(events)}::text::jsonb, '[]', '{}'
        )
      `;
    // Reserved connections still open when the test fails: their transactions
    // hold the session's lock, which the cleanup below would wait for forever.
    let ingestor: postgres.ReservedSql | undefined;
    let maintainer: postgres.ReservedSql | undefined;
    try {
      // A session that began a day before the cutoff and went on after it.
      const opened = await ingest(ingesting, [
        event(0, new Date(cutoff.getTime() - day)),
        event(1, new Date(cutoff.getTime() + day), "click"),
      ]);
      assert.deepEqual(opened.map((row) => row.outcome), ["accepted", "accepted"]);

      ingestor = await ingesting.reserve();
      await ingestor`begin`;
      const late = await ingest(ingestor, [event(2, new Date(cutoff.getTime() + 2 * day))]);
      assert.deepEqual(late.map((row) => row.outcome), ["accepted"]);

      maintainer = await maintaining.reserve();
      await maintainer`begin`;
      const [{ pid }] = await maintainer<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const maintenance = maintainer`
        select public.maintain_interaction_partitions(3, ${RETENTION}::interval) as r
      `.execute();
      // Watched, so that a maintenance failing before the commit below is
      // this test's failure (awaited here, with the cleanup run) rather than
      // an unhandled rejection that aborts the module and skips the cleanup.
      let finished = false;
      maintenance.then(() => finished = true, () => finished = true);
      // The maintenance reaches the session the ingestion holds, and waits.
      let waiting = false;
      for (let i = 0; i < 200 && !waiting && !finished; i++) {
        const [row] = await watching<{ waiting: boolean }[]>`
          select wait_event_type = 'Lock' as waiting from pg_stat_activity where pid = ${pid}
        `;
        waiting = row?.waiting ?? false;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      if (finished) await maintenance;
      assert.ok(waiting, "the maintenance never waited for the ingestion's lock");
      await ingestor`commit`;
      ingestor.release();
      ingestor = undefined;
      await maintenance;

      const [counted] = await maintainer<
        { interaction_count: number; page_views: number; rows: number; views: number }[]
      >`
        select s.interaction_count, s.page_views,
          (select count(*)::integer from public.user_interactions where session_id = s.id) as rows,
          (select count(*)::integer from public.user_interactions
            where session_id = s.id and event_type = 'view') as views
        from public.sessions as s
        where s.id = ${sessionId}
      `;
      await maintainer`rollback`;
      maintainer.release();
      maintainer = undefined;
      // The event before the cutoff is gone; the two after it are counted.
      assert.deepEqual(counted, { interaction_count: 2, page_views: 1, rows: 2, views: 1 });
    } finally {
      // The ingestion first: the maintenance may be waiting for its lock.
      for (const reserved of [ingestor, maintainer]) {
        if (!reserved) continue;
        try {
          await reserved`rollback`;
        } catch {
          // Already broken or closed: ending the pools below closes it.
        }
        try {
          reserved.release();
        } catch {
          // Likewise.
        }
      }
      await watching`delete from public.user_interactions where event_id = any(${eventIds}::uuid[])`;
      await watching`delete from public.interaction_event_ids where event_id = any(${eventIds}::uuid[])`;
      await watching`delete from public.sessions where id = ${sessionId}`;
      await Promise.all([ingesting.end(), maintaining.end(), watching.end()]);
    }
  },
);

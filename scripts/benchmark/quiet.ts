/**
 * Waits for the stack to be quiet before a measurement: the benchmark
 * empties tables other programs may be using, and a busy machine would
 * distort what it measures. Quiet means, for three seconds in a row, no
 * other client working in the database (the function's own sessions
 * included: the benchmark sends nothing while it waits) and the machine at
 * most a quarter busy.
 *
 * @example
 * ```ts
 * import type { Sql } from "./database_paths.ts";
 * import { waitForQuiet } from "./quiet.ts";
 *
 * async function settle(sql: Sql) {
 *   const busy = await waitForQuiet(sql, 60);
 *   if (busy.length) console.error(`still busy: ${busy.join(", ")}`);
 * }
 * ```
 *
 * @module
 */
import type { Sql } from "./database_paths.ts";
import { machineBusyOver } from "./processes.ts";

/** Share of the machine above which it does not count as quiet. */
const BUSY_MACHINE = 0.25;

/** What kept the stack from being quiet, after waiting up to `seconds`; empty when quiet. */
export async function waitForQuiet(sql: Sql, seconds: number): Promise<string[]> {
  let reasons: string[] = [];
  let quiet = 0;
  const deadline = performance.now() + seconds * 1000;
  while (quiet < 3 && performance.now() < deadline) {
    const rows = await sql<{ name: string }[]>`
      select distinct coalesce(nullif(application_name, ''), 'pid ' || pid) as name
      from pg_stat_activity
      where backend_type = 'client backend'
        and pid <> pg_backend_pid()
        and application_name <> 'bench'
        and state in ('active', 'idle in transaction', 'idle in transaction (aborted)')
    `;
    const busy = await machineBusyOver(1000);
    reasons = rows.map((r) => `database client ${r.name}`);
    if (busy > BUSY_MACHINE) reasons.push(`machine ${Math.round(busy * 100)}% busy`);
    quiet = reasons.length ? 0 : quiet + 1;
  }
  return quiet >= 3 ? [] : reasons;
}

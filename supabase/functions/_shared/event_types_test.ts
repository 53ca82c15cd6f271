import assert from "node:assert/strict";
import { integrationTest, sql } from "../../../test_support/stack.ts";
import { ENTITY_TYPES, EVENT_TYPES, USER_SPECIFIC_EVENT_TYPES } from "./event_types.ts";

/** The quoted values a CHECK constraint of public.user_interactions lists. */
async function checkedValues(constraint: string): Promise<string[]> {
  const [row] = await sql`
    select pg_get_constraintdef(oid) as definition
    from pg_constraint
    where conrelid = 'public.user_interactions'::regclass and conname = ${constraint}
  `;
  assert.ok(row, `constraint ${constraint} exists`);
  return [...(row.definition as string).matchAll(/'([^']*)'::text/g)].map((match) => match[1]);
}

integrationTest(
  "EVENT_TYPES lists exactly the values of the event_type CHECK constraint",
  async () => {
    const values = await checkedValues("user_interactions_event_type_valid");
    assert.deepEqual([...values].sort(), [...EVENT_TYPES].sort());
  },
);

integrationTest(
  "ENTITY_TYPES lists exactly the values of the entity_type CHECK constraint",
  async () => {
    const values = await checkedValues("user_interactions_entity_type_valid");
    assert.deepEqual([...values].sort(), [...ENTITY_TYPES].sort());
  },
);

Deno.test("the lists hold no repeats and user-specific types are event types", () => {
  assert.equal(new Set(EVENT_TYPES).size, 18);
  assert.equal(new Set(ENTITY_TYPES).size, 12);
  assert.deepEqual(
    [...USER_SPECIFIC_EVENT_TYPES].sort(),
    [
      "attendance",
      "comment",
      "follow",
      "interest",
      "like",
      "profile_update",
      "review",
      "streaming_recent",
      "streaming_top",
      "unfollow",
    ],
  );
});

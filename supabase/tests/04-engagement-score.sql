-- public.engagement_score against the test vectors it shares with the
-- TypeScript implementation (supabase/functions/_shared/engagement_score_vectors.json),
-- plus the inputs only SQL can pass (nulls, extremes).
-- pg_prove runs from the repository root, so the file is read from there.
\set vectors `cat supabase/functions/_shared/engagement_score_vectors.json`

begin;
select plan(jsonb_array_length(:'vectors'::jsonb -> 'vectors') + 8);

select is(
  public.engagement_score((v ->> 'interactionCount')::integer, (v ->> 'durationMs')::bigint),
  (v ->> 'expected')::integer,
  format(
    'engagement_score(%s, %s) = %s', v ->> 'interactionCount', v ->> 'durationMs',
    v ->> 'expected'
  )
)
from jsonb_array_elements(:'vectors'::jsonb -> 'vectors') with ordinality as t (v, n)
order by t.n;

-- The vectors cover every boundary the score has.
select is(
  (
    select count(distinct ((v ->> 'interactionCount')::integer, (v ->> 'durationMs')::bigint))
    from jsonb_array_elements(:'vectors'::jsonb -> 'vectors') as v
    where (v ->> 'interactionCount')::integer in (0, 1, 5, 6)
      and (v ->> 'durationMs')::bigint in (
        0, 59999, 60000, 299999, 300000, 899999, 900000, 1799999, 1800000, 36000000
      )
  ),
  40::bigint,
  'the vectors cover 0, 1, 5 and 6 interactions at every duration boundary and at 10 hours'
);

-- Inputs the vectors leave out.
select is(public.engagement_score(null, 600000), 0, 'a null interaction count scores 0');
select is(public.engagement_score(-3, 600000), 0, 'a negative interaction count scores 0');
select is(
  public.engagement_score(2, null), 10,
  'a null duration counts as 0: the short-session half of 20'
);
select is(
  public.engagement_score(2147483647, 9223372036854775807), 100,
  'the largest count and duration score 100 without overflowing'
);
select is(
  public.engagement_score(1, -9223372036854775807), 5,
  'a very negative duration counts as 0'
);
select is(
  public.engagement_score(3, 59999), 15,
  'just under one minute halves the score'
);
select is(
  (
    select count(distinct public.engagement_score(c, d))
    from generate_series(0, 12) as c, generate_series(-60000, 2400000, 30000) as d
    where public.engagement_score(c, d) not between 0 and 100
  ),
  0::bigint,
  'every score over a grid of counts and durations lies in 0..100'
);

select * from finish();
rollback;

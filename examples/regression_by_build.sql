-- +++
-- name = "Nightly crash rate per build"
-- description = "Main-process crash rate per nightly build, with the usage hours behind it: where a regression shows."
-- dialect = "presto"
-- tags = ["stability", "nightly", "builds"]
-- chart = { type = "line", x = "build_id", y = ["main_crash_rate"] }
-- +++
-- Main-process crash rate per nightly build, with the number of usage hours behind it.
SELECT
    dimensions['build_id']                                                  AS build_id,
    round(sum(stats['usage_hours']), 1)                                     AS usage_hours,
    round(1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']), 2) AS main_crash_rate
FROM crash_aggregates
WHERE dimensions['channel'] = 'nightly'
GROUP BY dimensions['build_id']
HAVING sum(stats['usage_hours']) > 100
ORDER BY build_id

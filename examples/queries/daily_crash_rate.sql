-- +++
-- name = "Daily main crash rate of a channel"
-- description = "Main-process crashes per 1,000 usage hours by activity date, for the channel chosen."
-- dialect = "presto"
-- tags = ["stability", "channel"]
-- chart = { type = "line", x = "activity_date", y = ["main_crash_rate"] }
--
-- [parameters.channel]
-- type = "text"
-- default = "release"
-- +++
-- Daily main crash rate of one channel (a parameter: the console shows it as a field).
SELECT
    activity_date,
    round(sum(stats['usage_hours']), 1)                                     AS usage_hours,
    round(1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']), 2) AS main_crash_rate
FROM crash_aggregates
WHERE dimensions['channel'] = {{ channel }}
GROUP BY activity_date
ORDER BY activity_date

-- +++
-- name = "Crash rates per channel"
-- description = "Crashes per 1,000 usage hours of each channel, busiest channel first: the original README's first query."
-- dialect = "presto"
-- tags = ["stability", "channel"]
-- chart = { type = "bar", x = "channel", y = ["main_crash_rate", "content_crash_rate", "plugin_crash_rate", "gpu_crash_rate"] }
-- +++
-- Crash rates per channel: crashes per 1,000 usage hours, busiest channel first.
SELECT
    dimensions['channel']                                         AS channel,
    round(sum(stats['usage_hours']), 1)                           AS usage_hours,
    round(1000 * sum(stats['main_crashes'])    / sum(stats['usage_hours']), 2) AS main_crash_rate,
    round(1000 * sum(stats['content_crashes']) / sum(stats['usage_hours']), 2) AS content_crash_rate,
    round(1000 * sum(stats['plugin_crashes'])  / sum(stats['usage_hours']), 2) AS plugin_crash_rate,
    round(1000 * sum(stats['gpu_crashes'])     / sum(stats['usage_hours']), 2) AS gpu_crash_rate
FROM crash_aggregates
GROUP BY dimensions['channel']
ORDER BY sum(stats['usage_hours']) DESC

-- One page of the load history, newest first, each row whole (columns added later come along).
-- $1: page size, $2: rows skipped.
SELECT to_jsonb(recommendation_loads)
FROM recommendation_loads
ORDER BY recommendation_date DESC
LIMIT $1 OFFSET $2

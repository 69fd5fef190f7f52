-- The course recommendations' newest whole-day load: its date, its own load's time (not another row's) and age in
-- seconds, and the number of loads.
SELECT newest.recommendation_date, newest.loaded_at, extract(epoch FROM now() - newest.loaded_at)::float8,
       (SELECT count(*) FROM recommendation_loads)
FROM (SELECT NULL) AS one
LEFT JOIN LATERAL (
    SELECT recommendation_date, loaded_at FROM recommendation_loads
    WHERE NOT partial ORDER BY recommendation_date DESC LIMIT 1
) AS newest ON true

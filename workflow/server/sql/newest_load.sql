-- The newest loaded date, the newest load's time, its age in seconds and the number of loads.
SELECT max(recommendation_date), max(loaded_at), extract(epoch FROM now() - max(loaded_at))::float8, count(*)
FROM recommendation_loads

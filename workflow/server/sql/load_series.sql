-- Every load, oldest first, each row whole: the dashboard's loads over time.
SELECT to_jsonb(recommendation_loads)
FROM recommendation_loads
ORDER BY recommendation_date

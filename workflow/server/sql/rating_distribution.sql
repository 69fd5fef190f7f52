-- How many recommendations of the date $1 have each predicted rating, rounded to 0.1.
SELECT round(rating::numeric, 1)::float8 AS rating, count(*) AS recommendations
FROM daily_recommendations
WHERE recommendation_date = $1::date
GROUP BY 1
ORDER BY 1

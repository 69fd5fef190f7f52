-- How many current recommendations have each predicted rating, rounded to 0.1.
SELECT round(rating::numeric, 1)::float8 AS rating, count(*) AS recommendations
FROM recommendations
GROUP BY 1
ORDER BY 1

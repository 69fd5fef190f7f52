-- Recommendations and recommended users of the date $1 per course language, most recommended first.
SELECT courses.programming_language, count(*) AS recommendations, count(DISTINCT daily.user_id) AS users
FROM daily_recommendations AS daily
INNER JOIN courses ON courses.course_id = daily.course_id
WHERE daily.recommendation_date = $1::date
GROUP BY courses.programming_language
ORDER BY 2 DESC, 1

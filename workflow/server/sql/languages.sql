-- Current recommendations and recommended users per course language, most recommended first.
SELECT courses.programming_language, count(*) AS recommendations, count(DISTINCT recommendations.user_id) AS users
FROM recommendations
INNER JOIN courses ON courses.course_id = recommendations.course_id
GROUP BY courses.programming_language
ORDER BY 2 DESC, 1

-- The most recommended courses today, with how often and at which predicted rating ($1: how many).
SELECT courses.course_id, courses.title, courses.programming_language,
       count(*) AS recommendations, max(recommendations.rating) AS rating
FROM recommendations
INNER JOIN courses ON courses.course_id = recommendations.course_id
GROUP BY courses.course_id
ORDER BY 4 DESC, 1
LIMIT $1

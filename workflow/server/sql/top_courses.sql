-- The most recommended courses of the date $1, with how often and at which predicted rating ($2: how many).
SELECT courses.course_id, courses.title, courses.programming_language,
       count(*) AS recommendations, max(daily.rating) AS rating
FROM daily_recommendations AS daily
INNER JOIN courses ON courses.course_id = daily.course_id
WHERE daily.recommendation_date = $1::date
GROUP BY courses.course_id
ORDER BY 4 DESC, 1
LIMIT $2

-- Upsert the courses dimension from the staged courses, touching only rows that changed.
INSERT INTO courses (course_id, title, description, programming_language)
SELECT course_id, title, description, programming_language FROM staged_courses
ON CONFLICT (course_id) DO UPDATE
SET title = EXCLUDED.title, description = EXCLUDED.description, programming_language = EXCLUDED.programming_language
WHERE (courses.title, courses.description, courses.programming_language)
      IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.description, EXCLUDED.programming_language);

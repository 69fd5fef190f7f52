-- Add courses the warehouse does not know yet, leaving known ones as a newer load wrote them.
INSERT INTO courses (course_id, title, description, programming_language)
SELECT course_id, title, description, programming_language FROM staged_courses
ON CONFLICT (course_id) DO NOTHING;

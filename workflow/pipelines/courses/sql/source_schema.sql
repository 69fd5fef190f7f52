-- The application database's two tables, as the demo data generator creates them.
DROP TABLE IF EXISTS rating;
DROP TABLE IF EXISTS courses;
CREATE TABLE courses (
    course_id            integer,
    title                text,
    description          text,
    programming_language text
);
CREATE TABLE rating (
    user_id   integer,
    course_id integer,
    rating    integer
);

-- The current films whose title holds $1 (a LIKE pattern, its wildcards escaped), by title, at most $2 of them.
SELECT film_id, title FROM store.film WHERE title ILIKE '%' || $1::text || '%' ESCAPE '\' ORDER BY title, film_id
LIMIT $2::integer

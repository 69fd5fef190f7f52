-- The titles of the films $1 (ids).
SELECT film_id, title FROM store.film WHERE film_id = ANY($1::bigint[])

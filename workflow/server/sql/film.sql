-- One film's row, whole ($1: the film id).
SELECT to_jsonb(film) FROM store.film AS film WHERE film.film_id = $1::bigint

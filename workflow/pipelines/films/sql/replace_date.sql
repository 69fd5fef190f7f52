-- Replace the date's rows with the staged ones (readers see the old rows or the new, never a mix).
DELETE FROM store.film_daily WHERE load_date = :load_date;
INSERT INTO store.film_daily SELECT * FROM staged_film;

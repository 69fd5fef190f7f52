-- The number of films the warehouse holds for a date, which retention removes.
SELECT count(*) FROM store.film_daily WHERE load_date = :load_date;

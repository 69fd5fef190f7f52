-- The number of recommendations the warehouse holds for a date (its partition's rows), which retention removes.
SELECT count(*) FROM daily_recommendations WHERE recommendation_date = :recommendation_date;

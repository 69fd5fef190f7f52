"""Course recommendations: the top-3 courses per user, from the application's courses and ratings to the warehouse."""

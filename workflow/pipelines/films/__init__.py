"""The film pipeline: Pagila's films with their rental rate parts, ratings and recommendations, into store.film."""

"""The courses pipeline's data: the columns of each data set, their reject reasons and the warehouse layout."""

from __future__ import annotations

import pyarrow as pa

from workflow.rules.ratings import RatingRoles

# The source tables' columns as the extract reads them (its Arrow types are checked against the SQL types).
COURSES_SCHEMA = pa.schema(
    [
        ("course_id", pa.int64()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("programming_language", pa.string()),
    ]
)
RATING_SCHEMA = pa.schema([("user_id", pa.int64()), ("course_id", pa.int64()), ("rating", pa.float64())])
COURSE_COLUMNS = COURSES_SCHEMA.names
RATING_COLUMNS = RATING_SCHEMA.names
# Which columns play user and item in the ratings, and the names of a course's average rating and count.
RATING_ROLES = RatingRoles(
    user="user_id", item="course_id", unknown_item="unknown_course", average="average_rating", count="n_ratings"
)
COURSE_REASONS = ["missing_course_id", "duplicate_course_id"]

# How each recommendation column travels in PostgreSQL's binary COPY format (big-endian, fixed width);
# sql/warehouse_schema.sql declares the same columns (a test checks they agree).
RECOMMENDATION_LAYOUT = [("user_id", ">i8"), ("course_id", ">i8"), ("rating", ">f8"), ("rank", ">i2")]
RECOMMENDATION_COLUMNS = [name for name, _ in RECOMMENDATION_LAYOUT]

"""The courses pipeline's data: the columns of each data set, their reject reasons and the warehouse layout."""

from __future__ import annotations

import pyarrow as pa

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
# The extract's timestamp of a rating (UTC), whatever the source calls it ([source] rating_timestamp_column).
RATED_AT = "rated_at"

# In the order the logs and run records count them (the checks run in the order validate_ratings lists).
RATING_REASONS = [
    "missing_value", "unknown_course", "rating_out_of_range", "duplicate_pair", "missing_timestamp", "superseded",
]  # fmt: skip
COURSE_REASONS = ["missing_course_id", "duplicate_course_id"]
# Rows set aside because a newer copy replaced them, not because they break a rule: they do not
# count toward [rules] max_invalid_share.
UNCOUNTED_REASONS = ["superseded"]

# How each recommendation column travels in PostgreSQL's binary COPY format (big-endian, fixed width);
# sql/warehouse_schema.sql declares the same columns (a test checks they agree).
RECOMMENDATION_LAYOUT = [("user_id", ">i8"), ("course_id", ">i8"), ("rating", ">f8"), ("rank", ">i2")]
RECOMMENDATION_COLUMNS = [name for name, _ in RECOMMENDATION_LAYOUT]

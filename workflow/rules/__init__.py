"""The rules every pipeline shares, pure: frames in, frames out (exact ids, data quality, validated ratings)."""

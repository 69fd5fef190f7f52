"""What every pipeline builds on: outputs by date, dated tasks with run records, data quality, exact ids."""

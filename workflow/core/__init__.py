"""The luigi task kit every pipeline builds on: pipeline declarations, dated targets and run records, dated loads."""

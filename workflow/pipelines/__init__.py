"""One folder per pipeline: its schemas, rules, tasks, warehouse SQL and demo data; no pipeline imports another."""

"""One folder per pipeline: its declaration (__init__), schemas, rules, tasks, warehouse SQL and demo data; no pipeline
imports another."""

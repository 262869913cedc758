"""When watches run: APScheduler wiring and the run jobs (issue 6)."""

"""The labs' async shell, written once: scripts/unasync.py writes labs/_sync/ from it."""

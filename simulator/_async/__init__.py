"""The async twin's shells, written once: scripts/unasync.py writes simulator/_sync/ from them."""

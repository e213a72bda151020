"""The sync twin's shells, written by scripts/unasync.py from simulator/_async/ (but backend.py, by hand)."""

"""The labs' sync shell, written by scripts/unasync.py from labs/_async/."""

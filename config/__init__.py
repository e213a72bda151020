"""Configuration: validated settings (settings) and the Redis singleton (redis)."""

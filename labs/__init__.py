"""Labs: each defence switched off and then on, measured side by side; and how much memory buys what hit ratio."""

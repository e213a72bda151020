"""The prompt both twins share: what the user typed (commands), what is printed (render), and the terminal (console)."""

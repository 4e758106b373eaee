"""Training settings and paths."""

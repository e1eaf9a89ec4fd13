"""Sentence encoders beyond the bundled English MiniLM: the Chinese adaptation (a small delta)."""

"""Build tools that prepare shipped data (not imported at run time)."""

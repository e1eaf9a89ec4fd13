"""The PII name/address tagger's training data and trainer (runtime: :mod:`components.privacy`)."""

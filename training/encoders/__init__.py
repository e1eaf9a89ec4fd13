"""The multilingual encoder's fine-tuning.

Runtime assembly: :mod:`components.encoders.multilingual`.
"""

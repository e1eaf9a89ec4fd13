"""Content safety engines.

Text normalisation with offset maps, lexicons, the matching engine and the prompt-injection
rules. Engines only: nothing here imports ``rasa`` or ``rasa_sdk``.
"""

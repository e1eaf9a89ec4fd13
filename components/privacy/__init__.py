"""Personal data: recognisers, the vault, and the masking of events and logs (engines only).

The Rasa-facing stores that apply the masking (the masking tracker store and event broker) live
in :mod:`components.stores`.
"""

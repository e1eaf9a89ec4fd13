"""Personal data: recognisers, the vault, masking, and the Rasa adapters that use them.

The engines are the recognisers, the vault and the masking of events and logs; the Rasa
adapters are the masking tracker store and event broker.
"""

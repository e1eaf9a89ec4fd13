"""Personal data: recognisers, the vault, masking of events and logs (engines), and the masking
tracker store and event broker (Rasa adapters)."""

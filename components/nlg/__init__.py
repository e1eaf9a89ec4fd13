"""The rephrasing NLG (a Rasa adapter) and the fact checks it runs on every rephrasing."""

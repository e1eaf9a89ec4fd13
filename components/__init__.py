"""Kefu's Rasa components and the engines behind them (NLU, NLG, LLM, safety, privacy)."""

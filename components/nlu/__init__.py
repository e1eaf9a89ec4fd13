"""Rasa NLU adapters and the joint intent+entity model they wrap.

The adapters are the intent+entity classifier, the few-shot LLM classifier and the guard
component.
"""

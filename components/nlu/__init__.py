"""Rasa NLU adapters (intent+entity classifier, few-shot LLM classifier, guard component) and
the joint intent+entity model they wrap."""

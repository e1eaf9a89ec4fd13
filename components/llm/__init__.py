"""One LLM client for every caller (NLG, knowledge answers, few-shot intents).

Backends are chosen by configuration; see :func:`components.llm.client.create_client`.
"""

from components.llm.base import Generation, LLMBackend
from components.llm.client import LLMClient, create_client

__all__ = ["Generation", "LLMBackend", "LLMClient", "create_client"]

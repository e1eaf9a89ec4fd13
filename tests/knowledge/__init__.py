"""Knowledge-base tests."""

from components.assistants import get_assistant

#: The shop's documents (``knowledge/docs/shop``), the corpus the retrieval tests answer from.
SHOP_DOCS = get_assistant("shop").docs

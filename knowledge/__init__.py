"""The shop's knowledge base: documents, Haystack indexing and retrieval."""

from knowledge.retrieval import Answer, KnowledgeBase

__all__ = ["Answer", "KnowledgeBase"]

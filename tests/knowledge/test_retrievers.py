from haystack import Document
from haystack.document_stores.in_memory import InMemoryDocumentStore

from knowledge.retrievers import MatrixEmbeddingRetriever


def test_cosine_top_k_matches_a_brute_force_ranking():
    store = InMemoryDocumentStore()
    store.write_documents(
        [
            Document(id="x", content="x", embedding=[1.0, 0.0]),
            Document(id="y", content="y", embedding=[0.6, 0.8]),
            Document(id="z", content="z", embedding=[0.0, 2.0]),
            Document(id="none", content="no embedding"),
        ]
    )
    retriever = MatrixEmbeddingRetriever(store, top_k=2)
    docs = retriever.run(query_embedding=[0.0, 1.0])["documents"]
    assert [d.id for d in docs] == ["z", "y"]
    assert [round(d.score, 3) for d in docs] == [1.0, 0.8]
    assert len(retriever.run(query_embedding=[1.0, 0.0], top_k=10)["documents"]) == 3


def test_empty_store():
    assert MatrixEmbeddingRetriever(InMemoryDocumentStore()).run([1.0, 0.0])["documents"] == []

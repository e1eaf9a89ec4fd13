import pytest

from knowledge.lexical import TermStatistics, encoder_vocabulary, stem, terms


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("shipping", "ship"),
        ("ships", "ship"),
        ("arrives", "arriv"),
        ("arrived", "arriv"),
        ("arrive", "arriv"),
        ("policies", "policy"),
        ("stores", "stor"),
        ("store", "stor"),
        ("address", "address"),
        ("status", "status"),
        ("fees", "fee"),
        ("refund", "refund"),
        ("calling", "call"),  # l is not un-doubled after -ing...
        ("cancelled", "cancel"),  # ...but a long stem's double consonant is
        ("cancel", "cancel"),
        ("installed", "instal"),
        ("install", "instal"),
        ("seeing", "see"),  # vowels are never un-doubled
        ("getting", "get"),
    ],
)
def test_stem(word, stemmed):
    assert stem(word) == stemmed


def test_terms_drop_stop_words_and_expand_contractions():
    assert terms("Why doesn't my parcel arrive? It's late!") == {"parcel", "arriv", "lat"}
    assert terms("Can't I return it?") == {"return"}
    assert terms("") == set()


def test_support_weighs_words_by_how_rare_they_are_in_the_knowledge_base():
    stats = TermStatistics(
        [
            "Demo Shop ships parcels to China.",
            "Demo Shop refunds returned items.",
            "Demo Shop staff never ask for your password.",
        ]
    )
    assert stats.idf("demo") < stats.idf("password") < stats.idf("ceo")  # unknown: rarest
    covered = stats.support("Will staff ask for my password?", "staff never ask for password")
    assert covered == pytest.approx(1.0)
    # naming the shop is not enough: the question is about something no passage mentions
    assert stats.support("Who is the CEO of Demo Shop?", "Demo Shop ships parcels") < 0.5
    assert stats.support("the of and", "anything") == 0.0


def test_stop_words_are_dropped_after_stemming_too():
    assert terms("whats the fee") == {"fee"}


def test_words_unknown_to_the_knowledge_base_and_the_encoder_are_left_out():
    passages = ["Refunds are issued within 3 working days.", "Demo Shop ships to China."]
    vocabulary = frozenset({"how", "long", "refunds", "take", "ceo", "who"})
    with_vocab = TermStatistics(passages, vocabulary=vocabulary)
    without = TermStatistics(passages)
    passage = "Refunds are issued within 3 working days."
    # "refnuds" is a typo: neither the knowledge base nor the encoder knows it
    assert with_vocab.support("refnuds refunds", passage) == pytest.approx(1.0)
    assert without.support("refnuds refunds", passage) < 0.6
    # "ceo" is a real word the knowledge base never uses: it still counts, and counts most
    assert with_vocab.support("who is the ceo of demo shop", "Demo Shop ships to China.") < 0.5


def test_encoder_vocabulary_reads_whole_words(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n##ing\nrefund\nship\n", encoding="utf-8")
    assert encoder_vocabulary(tmp_path) == frozenset({"refund", "ship"})
    assert encoder_vocabulary(tmp_path / "missing") is None

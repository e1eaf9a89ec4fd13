import pytest

from knowledge.lexical import TermStatistics, stem, terms


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
        ("calling", "call"),  # l is not un-doubled
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

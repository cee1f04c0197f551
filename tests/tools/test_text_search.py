"""Tokeniser, BM25 ranking and excerpts."""

from __future__ import annotations

from opx.tools.text_search import Bm25Index, excerpt, query_terms, tokenize


def test_tokens_lowercase_drop_stop_words_and_keep_compounds() -> None:
    tokens = tokenize("The orders-db IS throttled on PetSearch_AWS::ECS::Fargate")
    assert "the" not in tokens and "is" not in tokens
    assert {"orders", "db", "orders-db", "throttled"} <= set(tokens)
    assert {"petsearch", "aws", "ecs", "fargate", "petsearch_aws::ecs::fargate"} <= set(tokens)


def test_query_terms_are_distinct() -> None:
    assert query_terms("db db DB timeout") == ["db", "timeout"]


def test_document_about_the_query_ranks_first() -> None:
    texts = [
        "deploying the frontend with a canary release",
        "orders-db throttling: read capacity exceeded, raise provisioned throughput on orders-db",
        "general notes about the payments service and its queue",
    ]
    hits = Bm25Index(texts).search("orders-db throttling")
    best = max(hits, key=lambda h: h.score)
    assert best.index == 1
    assert {h.index for h in hits} == {1}


def test_rarer_terms_weigh_more() -> None:
    index = Bm25Index(["cache miss", "cache evicted", "cache timeout", "timeout"])
    assert index.idf("miss") > index.idf("cache")


def test_no_matching_term_gives_no_hits() -> None:
    index = Bm25Index(["alpha beta", "gamma"])
    assert index.search("delta") == []
    assert index.search("the of and") == []
    assert Bm25Index([]).search("alpha") == []


def test_excerpt_is_bounded_and_shows_the_match() -> None:
    text = ("filler words " * 100) + "the orders-db table was throttled " + ("tail " * 100)
    cut = excerpt(text, "throttled", 400)
    assert len(cut) <= 400
    assert "throttled" in cut
    assert excerpt("short   text\nhere", "x") == "short text here"

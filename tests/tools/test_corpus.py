"""`search` and the `search_corpus` tool over the bundled markdown corpus."""

from __future__ import annotations

import re

import pytest

from podium.tools.corpus import Passage, load_corpus, search, search_corpus

FILES = {"grid-storage.md", "heat-pumps.md", "policy-incentives.md", "rooftop-solar.md"}


def test_corpus_holds_sentences_of_every_file_without_headings():
    corpus = load_corpus()
    assert {p.source for p in corpus} == FILES
    assert len(corpus) == 18
    for passage in corpus:
        assert passage.text == passage.text.strip() and passage.text
        assert not passage.text.startswith("#")
        assert not passage.text.startswith("Sample corpus")
    assert load_corpus() is corpus


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "heat pump sales",
            [
                ("heat-pumps.md", "Heat pump sales in the sample region rose"),
                ("heat-pumps.md", "A typical heat pump delivers"),
                ("policy-incentives.md", "The clean heat grant covers"),
                ("policy-incentives.md", "A training subsidy for installers"),
            ],
        ),
        (
            "battery pack price",
            [
                ("grid-storage.md", "The average price of a utility battery pack"),
                ("grid-storage.md", "Battery storage capacity on the regional grid"),
                ("rooftop-solar.md", "Households that pair rooftop solar with a home battery"),
            ],
        ),
        (
            "Grant applications",
            [
                ("policy-incentives.md", "Grant applications went from"),
                ("policy-incentives.md", "The clean heat grant covers"),
                ("policy-incentives.md", "Programme evaluators found that grants"),
            ],
        ),
        (
            "ROOFTOP SOLAR!",
            [
                ("rooftop-solar.md", "Rooftop solar systems were installed"),
                ("rooftop-solar.md", "Households that pair rooftop solar"),
                ("grid-storage.md", "Storage is mostly used to shift solar output"),
                ("rooftop-solar.md", "Export tariffs for surplus solar power"),
            ],
        ),
    ],
    ids=["best-match-first-then-corpus-order", "two-terms-beat-one", "plurals", "case"],
)
def test_search_ranking(query, expected):
    hits = search(query)
    assert [p.source for p in hits] == [source for source, _ in expected]
    for passage, (_, start) in zip(hits, expected, strict=True):
        assert passage.text.startswith(start), (passage.text, start)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_search_limit_keeps_the_best(limit):
    assert search("heat pump sales", limit=limit) == search("heat pump sales")[:limit]


@pytest.mark.parametrize(
    "query",
    ["", "quantum chromodynamics", "the of and from", "what is this about?", "!!!"],
    ids=["empty", "unknown-words", "stop-words", "question-of-stop-words", "punctuation"],
)
def test_search_without_matches(query):
    assert search(query) == []


def test_search_corpus_formats_one_line_per_hit_with_source():
    output = search_corpus.invoke({"query": "heat pump sales"})
    lines = output.splitlines()
    hits = search("heat pump sales")
    assert lines == [f"[{p.source}] {p.text}" for p in hits]
    assert len(lines) == 4
    for line in lines:
        assert re.fullmatch(r"\[[a-z\-]+\.md\] \S.*", line)


def test_search_corpus_returns_fewer_lines_when_fewer_passages_match():
    output = search_corpus.invoke({"query": "permitting"})
    assert output.splitlines() == [
        "[rooftop-solar.md] Permitting takes three weeks on average, down from eight weeks "
        "when the online process launched."
    ]


@pytest.mark.parametrize("query", ["quantum chromodynamics", "the"])
def test_search_corpus_says_when_nothing_matches(query):
    assert search_corpus.invoke({"query": query}) == (
        f"No passages match {query!r}. Try other keywords."
    )


def test_search_corpus_schema_shows_only_the_query():
    assert set(search_corpus.args) == {"query"}
    assert isinstance(load_corpus()[0], Passage)

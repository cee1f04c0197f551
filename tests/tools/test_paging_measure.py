"""Measuring splittable items once: element sizes, piece sizes and the binary-searched fit
agree with serialising."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opx.tools.paging import Column, SplitItem, json_size, json_sizes

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # includes NaN and infinities, which json writes as NaN / Infinity
    st.text(),
)


@settings(max_examples=200)
@given(st.one_of(st.lists(st.text()), st.lists(st.floats()), st.lists(JSON_SCALARS)))
def test_json_sizes_agree_with_serialising(values: list[Any]) -> None:
    assert json_sizes(values) == [json_size(v) for v in values]


def test_json_sizes_of_strings_that_need_escaping() -> None:
    values = ['a"b', "back\\slash", "line\nbreak", "\x7f", "é", "€", "😀", ""]
    assert json_sizes(values) == [json_size(v) for v in values]


def test_json_sizes_of_special_floats() -> None:
    values = [float("nan"), float("inf"), -float("inf"), -0.0, 1e-320, 1.7976931348623157e308]
    assert json_sizes(values) == [json_size(v) for v in values]


def _item(points: int) -> dict[str, Any]:
    return {
        "id": "svc|Métrique|p99",
        "timestamps": [f"2026-03-01T12:{i % 60:02d}:00Z" for i in range(points)],
        "values": [round(i * 1.37, i % 5) for i in range(points)],
        "unit": "Count",
    }


def _piece(item: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    split = ("timestamps", "values")
    return {k: (v[start:stop] if k in split else v) for k, v in item.items()}


@pytest.mark.parametrize("points", [0, 1, 2, 7, 40])
def test_every_piece_is_sized_and_cut_like_the_item(points: int) -> None:
    item = _item(points)
    measured = SplitItem.of(item)
    assert len(measured) == points
    for start in range(points + 1):
        for stop in range(start, points + 1):
            piece = measured.piece(start, stop)
            assert piece == _piece(item, start, stop)
            assert list(piece) == list(item)  # key order kept
            assert measured.size(start, stop) == json_size(piece)


@settings(max_examples=100)
@given(st.integers(0, 300), st.integers(0, 300), st.integers(-50, 12_000))
def test_fit_takes_the_most_points_that_fit(points: int, start: int, room: int) -> None:
    measured = SplitItem.of(_item(points))
    start = min(start, points)
    taken = measured.fit(start, points, room)
    grows = measured.size(start, start + taken) - measured.shell_size
    assert 0 <= taken <= points - start
    assert taken == 0 or grows <= room
    if start + taken < points:
        more = measured.size(start, start + taken + 1) - measured.shell_size
        assert more > room


def test_shared_columns_build_the_same_item() -> None:
    item = _item(30)
    stamps = Column.of(item["timestamps"])
    built = SplitItem.from_columns(
        {"id": item["id"], "unit": item["unit"]},
        {"timestamps": stamps, "values": Column.of(item["values"])},
    )
    assert built.piece(0, 30) == {
        "id": item["id"],
        "unit": item["unit"],
        "timestamps": item["timestamps"],
        "values": item["values"],
    }
    assert built.size(3, 17) == json_size(built.piece(3, 17))


def test_pieces_are_copies_of_the_measured_lists() -> None:
    measured = SplitItem.of(_item(5))
    measured.piece(0, 5)["values"].append(99.0)
    assert measured.piece(0, 5)["values"] == _item(5)["values"]


def test_split_lists_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        SplitItem.of({"timestamps": ["a", "b"], "values": [1.0]})

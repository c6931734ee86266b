"""The test tiers: tests/conftest.py marks every test that reads ../shared as `media`."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_REASON, needs_shared, pytest_collection_modifyitems


class FakeItem:
    def __init__(self, fixturenames=(), marks=()):
        self.fixturenames, self.marks = list(fixturenames), list(marks)

    def iter_markers(self):
        return iter(self.marks)

    def add_marker(self, mark):
        self.marks.append(mark.mark if hasattr(mark, "mark") else mark)

    def marked(self, name: str) -> bool:
        return any(mark.name == name for mark in self.marks)


def test_reading_shared_by_fixture_or_mark_is_the_media_tier():
    by_fixture = FakeItem(["tmp_path", "landmarker_path", "shared_dir"])
    by_mark = FakeItem(["tmp_path"], [needs_shared.mark])
    other_skip = FakeItem(["tmp_path"], [pytest.mark.skipif(True, reason="no GPU").mark])
    plain = FakeItem(["tmp_path", "tiny_models_dir"])
    pytest_collection_modifyitems(None, [by_fixture, by_mark, other_skip, plain])
    assert by_fixture.marked("media") and by_mark.marked("media")
    assert not other_skip.marked("media") and not plain.marked("media")
    assert needs_shared.mark.kwargs["reason"] == SHARED_REASON


def test_this_test_is_in_the_deterministic_tier(request):
    assert request.node.get_closest_marker("media") is None and request.node.get_closest_marker("timing") is None


def test_a_test_asking_for_shared_files_is_marked_media(request, landmarker_path):
    assert request.node.get_closest_marker("media") is not None

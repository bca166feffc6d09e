"""The test suite's own rules: a missing system component skips locally and fails where
``STUDIO_REQUIRE`` names it (CI), so CI never goes green by skipping."""

from __future__ import annotations

import pytest

from conftest import require


def test_missing_component_skips_unless_required(monkeypatch):
    monkeypatch.delenv("STUDIO_REQUIRE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no browser"):
        require("chromium", False, "no browser")
    monkeypatch.setenv("STUDIO_REQUIRE", "postgres, chromium")
    with pytest.raises(pytest.fail.Exception, match="chromium is required"):
        require("chromium", False, "no browser")
    require("chromium", True, "present")  # available: nothing happens

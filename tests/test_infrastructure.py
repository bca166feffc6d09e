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


def test_ci_installs_and_requires_every_system_component():
    """``.ci/run`` installs Chromium and PostgreSQL and makes their tests fail, not skip,
    when either is missing (every ``require`` component used by the suite is listed)."""
    import re

    from conftest import REPO

    script = (REPO / ".ci" / "run").read_text()
    required = set(re.search(r"STUDIO_REQUIRE=([\w,]+)", script).group(1).split(","))
    used = set()
    for path in (REPO / "tests").glob("*.py"):
        used |= set(re.findall(r"""require\(\s*["'](\w+)["']""", path.read_text()))
    assert used and used <= required, f"components tests require but CI does not: {used - required}"
    assert "chromium" in script and "postgresql" in script.split("apt-get install")[1]

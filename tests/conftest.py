"""Shared fixtures: the tiny preset (seconds) and the embedded default built by `levekar demo` (about two
minutes, once per test session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.synth.generate import generate, write_extract

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def reference() -> dict:
    """Figures from NOU 2020:16: a copy of shared/reference/nou2020_16.yaml (kept identical, see
    test_reference_copy_is_current), so the tests run wherever the repository is cloned."""
    return yaml.safe_load((REPO / "tests" / "data" / "nou2020_16.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "extract"
    write_extract(generate("tiny", seed=7), out)
    return out


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The embedded default, made by the README's main job (`levekar demo`). LEVEKAR_TEST_DEMO_DIR points at an
    existing demo output to skip the two-minute build while developing."""
    if reuse := os.environ.get("LEVEKAR_TEST_DEMO_DIR"):
        return Path(reuse) / "extract"
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    return out / "extract"


@pytest.fixture(scope="session")
def web_store(demo_dir):
    """The demo's published store, loaded once for every web test (the app, the API and the browser)."""
    from levekar.web.store import load_store

    return load_store(demo_dir.parent / "published")

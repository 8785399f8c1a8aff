"""The web's JSON-stat 2.0 downloads, written by the shared writer (`levekar.sources.jsonstat.to_jsonstat`),
read back with pyjstat (an independent reader) and with the project's own reader."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pyjstat import pyjstat

from levekar.sources.jsonstat import read_dataset
from levekar.web.views import View


def _view() -> View:
    frame = pd.DataFrame(
        {
            "area": ["a", "a", "b", "b", "c"],
            "year": [2018, 2019, 2018, 2019, 2019],
            "value": [10.5, 11.0, float("nan"), 12.25, 3.0],
            "ci_low": [9.0, 10.0, float("nan"), 11.0, 1.0],
        }
    )
    status = pd.DataFrame({"value": [None, None, ":", None, None], "ci_low": [None, None, ":", None, ".."]})
    return View(
        name="t",
        title="t",
        frame=frame,
        dimensions=["area", "year"],
        measures=["value", "ci_low"],
        status=status,
        labels={"value": "Verdi"},
        category_labels={"area": {"a": "Area A"}},
        roles={"time": ["year"], "geo": ["area"]},
    )


def test_dataset_shape_and_symbols():
    ds = _view().jsonstat(synthetic=True, updated="2026-01-01")
    assert ds["version"] == "2.0" and ds["class"] == "dataset"
    assert ds["id"] == ["area", "year", "contents"]
    assert ds["size"] == [3, 2, 2]
    assert len(ds["value"]) == 12
    assert ds["role"] == {"time": ["year"], "geo": ["area"], "metric": ["contents"]}
    # (a, 2018, value) is the first cell; (b, 2018, *) suppressed; (c, 2018, *) has no row; (c, 2019, ci_low) '..'
    assert ds["value"][0] == 10.5
    assert ds["status"] == {"4": ":", "5": ":", "11": ".."}
    assert ds["value"][4] is None and ds["value"][5] is None and ds["value"][11] is None
    assert ds["value"][8] is None and ds["value"][9] is None
    assert ds["dimension"]["area"]["category"]["label"]["a"] == "Area A"
    assert ds["extension"]["synthetic"] is True
    json.dumps(ds, allow_nan=False)  # strict JSON: no NaN anywhere


def test_text_measures_are_kept():
    v = _view()
    v.frame["label"] = ["høy", "lav", None, "høy", "lav"]
    v.status["label"] = [None, None, ":", None, None]
    v.measures = ["value", "label"]
    ds = v.jsonstat(synthetic=False)
    assert ds["size"] == [3, 2, 2]
    assert ds["value"][:2] == [10.5, "høy"] and ds["value"][5] is None and ds["status"]["5"] == ":"


# pyjstat's Dataset.write calls its own deprecated from_json_stat
@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
def test_dataset_reads_back_with_pyjstat():
    ds = _view().jsonstat(synthetic=False)
    back = pyjstat.Dataset.read(json.dumps(ds)).write("dataframe", naming="id")
    assert list(back.columns) == ["area", "year", "contents", "value"]
    assert len(back) == 12
    got = back.set_index(["area", "year", "contents"])["value"]
    assert got[("a", "2018", "value")] == 10.5
    assert got[("b", "2019", "value")] == 12.25
    assert pd.isna(got[("b", "2018", "value")])  # suppressed: no number
    # pyjstat's own Dataset class reads it too, with labels
    labelled = pyjstat.Dataset.read(json.dumps(ds)).write("dataframe")
    assert "Verdi" in set(labelled["contents"])
    # and the project's reader (the same module that wrote it) gives the symbols back
    mine = read_dataset(json.dumps(ds).encode()).to_frame()
    assert len(mine) == 12


def test_dataset_rejects_duplicate_keys():
    v = _view()
    v.frame.loc[1, "year"] = 2018
    with pytest.raises(ValueError, match="share a cell"):
        v.jsonstat(synthetic=False)

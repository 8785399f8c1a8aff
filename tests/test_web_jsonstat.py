"""The JSON-stat 2.0 writer, read back with pyjstat (an independent reader)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pyjstat import pyjstat

from levekar.web.jsonstat import dataset


def _frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame(
        {
            "area": ["a", "a", "b", "b", "c"],
            "year": [2018, 2019, 2018, 2019, 2019],
            "value": [10.5, 11.0, float("nan"), 12.25, 3.0],
            "ci_low": [9.0, 10.0, float("nan"), 11.0, 1.0],
        }
    )
    status = pd.DataFrame({"value": [None, None, ":", None, None], "ci_low": [None, None, ":", None, ".."]})
    return frame, status


def test_dataset_shape_and_symbols():
    frame, status = _frame()
    ds = dataset(frame, ["area", "year"], ["value", "ci_low"], status=status, title="t", roles={"time": ["year"]})
    assert ds["version"] == "2.0" and ds["class"] == "dataset"
    assert ds["id"] == ["area", "year", "contents"]
    assert ds["size"] == [3, 2, 2]
    assert len(ds["value"]) == 12
    assert ds["role"] == {"time": ["year"], "metric": ["contents"]}
    # (a, 2018, value) is the first cell; (b, 2018, *) suppressed; (c, 2018, *) has no row; (c, 2019, ci_low) '..'
    assert ds["value"][0] == 10.5
    assert ds["status"] == {"4": ":", "5": ":", "11": ".."}
    assert ds["value"][8] is None and ds["value"][9] is None
    json.dumps(ds, allow_nan=False)  # strict JSON: no NaN anywhere


# pyjstat's Dataset.write calls its own deprecated from_json_stat
@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
def test_dataset_reads_back_with_pyjstat():
    frame, status = _frame()
    ds = dataset(frame, ["area", "year"], ["value", "ci_low"], status=status, labels={"value": "Verdi"})
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


def test_dataset_rejects_duplicate_keys():
    frame = pd.DataFrame({"area": ["a", "a"], "value": [1.0, 2.0]})
    with pytest.raises(ValueError, match="duplicates"):
        dataset(frame, ["area"], ["value"])

"""The Swedish comparison: SCB's real RegSO socioeconomic area types (2022) beside the type distribution of
the project's Delmos-style reconstruction (scheme `delmos_types`)."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

TYPES = ["1", "2", "3", "4", "5"]


def scb_regso_types(path: str | Path | None = None) -> pd.Series:
    """SCB's RegSO area type per RegSO (index: "Kommun (RegSO)"), NaN where SCB gives none."""
    source = path or resources.files("levekar") / "data" / "nordic" / "se_regso_socioekonomisk_index_2022.csv"
    frame = pd.read_csv(io.StringIO(source.read_text(encoding="utf-8-sig")), dtype=str, keep_default_na=False)
    if list(frame.columns) != ["Unnamed: 0", "2022"]:
        raise ValueError(f"{source}: expected the header ',2022', got {','.join(frame.columns)!r}")
    types = frame["2022"].str.strip().replace("", np.nan)
    bad = types.notna() & ~types.isin(TYPES)
    if bad.any():
        raise ValueError(f"{source}: column 2022: type outside 1–5, e.g. {types[bad].iloc[0]!r}")
    return pd.Series(types.to_numpy(), index=frame["Unnamed: 0"].to_numpy(), name="type")


def compare_type_distributions(ours: pd.Series, scb: pd.Series) -> tuple[pd.DataFrame, float]:
    """Shares of types 1–5 in both (areas without a type left out, and counted), and the total variation
    distance between the two distributions (0 = the same, 1 = disjoint)."""
    table = pd.DataFrame(
        {
            "levekar_areas": ours.dropna().astype(str).value_counts().reindex(TYPES, fill_value=0),
            "scb_regso": scb.dropna().astype(str).value_counts().reindex(TYPES, fill_value=0),
        }
    )
    shares = table / table.sum()
    table["levekar_share"] = shares["levekar_areas"].round(3)
    table["scb_share"] = shares["scb_regso"].round(3)
    tvd = float(0.5 * (shares["levekar_areas"] - shares["scb_regso"]).abs().sum())
    table.index.name = "type"
    return table, tvd

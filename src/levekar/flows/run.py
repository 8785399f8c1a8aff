"""The flows stage inside `levekar run`: counted on the indicator stage's person-year facts (built once),
protected against the published indicator values, written as three store tables:

- `flows_movers`: per level, area, year pair and group — persons, employment 20–66, immigrant background
  and low income (EU60) in percent, median equivalised income;
- `flows_decomposition`: per share indicator, level, area and pair — the change and what each component
  contributed, with a plain-language reading;
- `flows_cohort`: the residents of the first year followed wherever they live, beside the current
  population of the area.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd

from levekar.flows.core import BASE_COLUMNS, FlowCounts, decomposable, flow_counts
from levekar.flows.protect import cohort_table, decomposition_table, movers_table, protect_groups
from levekar.indicators.catalogue import Catalogue
from levekar.indicators.expr import columns_of


class FlowsStage:
    """Collects the counts while the indicator stage has its facts (`columns`, `collect` are what
    `levekar.indicators.run.compute_indicators` takes as `extra_columns`, `on_facts`), then makes the
    published tables from them and the protected indicator values (`tables`)."""

    def __init__(self, extract_dir: str | Path, catalogue: Catalogue, pairs: list[tuple[int, int]] | None = None):
        self.extract_dir = Path(extract_dir)
        self.catalogue = catalogue
        self.pairs = pairs
        self.counts: FlowCounts | None = None
        self.columns = set(BASE_COLUMNS) | {
            c for i in decomposable(catalogue) for text in (i.population, i.numerator) if text for c in columns_of(text)
        }

    def collect(
        self, con: ibis.BaseBackend, facts: ibis.Table, tables: dict[str, ibis.Table], levels: dict[str, pd.DataFrame]
    ) -> None:
        geography = tables["geography"].execute()[["grunnkrets", "kommune"]]
        path = self.extract_dir / "migrations.parquet"  # moves across the extract's border (optional)
        migrations = pd.read_parquet(path) if path.exists() else None
        self.counts = flow_counts(con, facts, geography, levels, self.catalogue, migrations, self.pairs)

    def tables(self, values: pd.DataFrame) -> dict[str, pd.DataFrame]:
        if self.counts is None:
            raise RuntimeError("the flows were not counted: pass `collect` to compute_indicators as on_facts")
        return flow_tables(self.counts, values, self.catalogue)


def flow_tables(counts: FlowCounts, values: pd.DataFrame, catalogue: Catalogue) -> dict[str, pd.DataFrame]:
    """The three published tables from the counts and the (protected) indicator values."""
    groups = protect_groups(counts.groups, values, catalogue, counts.members)
    movers = movers_table(groups)
    return {
        "flows_movers": movers,
        "flows_cohort": cohort_table(movers),
        "flows_decomposition": decomposition_table(counts, movers, values, catalogue),
    }

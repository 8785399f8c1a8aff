"""One engine for every scheme: inputs → criteria (three-valued) → first category that holds, with reasons.

A criterion whose input or threshold is missing is *unknown*, not false. Conditions combine in Kleene's
three-valued logic, so "at least 2 of 4" is true with two criteria met, false when even the unknown ones
could not make two, and unknown otherwise. An area gets the first category that is *true*; a category above
it that is unknown is named in the reasons ("could be …"), so a missing input never silently lowers an area
without saying so.
"""

from __future__ import annotations

import functools
import math
import operator

import ibis
import numpy as np
import pandas as pd

from levekar.classify.rules import Condition, Scheme, SchemeError
from levekar.indicators.expr import DefinitionError, compile_expr

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
RESULT_COLUMNS = ["scheme", "version", "category", "criteria_met", "criteria_unknown", "reasons", "score", "rank"]


@functools.cache
def _connection() -> ibis.BaseBackend:
    return ibis.duckdb.connect()


def _expressions(frame: pd.DataFrame, exprs: dict[str, str], where: str) -> pd.DataFrame:
    """Evaluate SQL expressions (the catalogue's whitelisted subset) over `frame`, row for row."""
    if not exprs:
        return pd.DataFrame(index=frame.index)
    t = ibis.memtable(frame.reset_index(drop=True).assign(_row=np.arange(len(frame))))
    try:
        cols = {name: compile_expr(text, t).cast("float64") for name, text in exprs.items()}
    except DefinitionError as e:
        raise SchemeError(f"{where}: {e}") from e
    out = _connection().execute(t.select("_row", **cols).order_by("_row"))
    out.index = frame.index
    return out.drop(columns="_row")


def _trailing_mean(frame: pd.DataFrame, keys: list[str], col: str, years: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of `col` over each area's years (y − years, y], and how many of those years had a value."""
    wide = frame.pivot_table(index=keys, columns="year", values=col, aggfunc="first", dropna=False)
    span = range(int(frame["year"].min()), int(frame["year"].max()) + 1)
    wide = wide.reindex(columns=list(span))
    total = wide.T.rolling(years, min_periods=1).sum().T
    count = wide.notna().T.rolling(years, min_periods=1).sum().T
    mean = (total / count.where(count > 0)).stack(future_stack=True).rename("mean")
    n = count.stack(future_stack=True).rename("n")
    idx = pd.MultiIndex.from_frame(frame[[*keys, "year"]])
    return mean.reindex(idx).to_numpy(), n.reindex(idx).to_numpy()


def _state(values: np.ndarray, thresholds: np.ndarray, op: str) -> np.ndarray:
    """1.0 met, 0.0 not met, NaN unknown."""
    known = np.isfinite(values) & np.isfinite(thresholds)
    with np.errstate(invalid="ignore"):
        met = _OPS[op](np.where(known, values, 0), np.where(known, thresholds, 0))
    return np.where(known, met.astype(float), np.nan)


def _at_least(states: list[np.ndarray], n: int) -> np.ndarray:
    stack = np.vstack(states)
    true = (stack == 1).sum(axis=0)
    unknown = np.isnan(stack).sum(axis=0)
    return np.where(true >= n, 1.0, np.where(true + unknown < n, 0.0, np.nan))


class _Evaluator:
    def __init__(self, scheme: Scheme, frame: pd.DataFrame, keys: list[str], criteria: dict[str, np.ndarray]):
        self.frame, self.keys, self.criteria = frame, keys, criteria
        self.categories = {c.id: c.when for c in scheme.categories}
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, cond: Condition) -> np.ndarray:
        if isinstance(cond, str):
            if cond in self.criteria:
                return self.criteria[cond]
            if cond not in self.cache:
                self.cache[cond] = self(self.categories[cond])
            return self.cache[cond]
        if "all" in cond:
            return _at_least([self(c) for c in cond["all"]], len(cond["all"]))
        if "any" in cond:
            return _at_least([self(c) for c in cond["any"]], 1)
        if "at_least" in cond:
            return _at_least([self(c) for c in cond["of"]], cond["at_least"])
        if "not" in cond:
            return 1.0 - self(cond["not"])
        return self._held(cond["held"], cond["years"])

    def _held(self, category: str, years: int) -> np.ndarray:
        """The condition held in year y and each of the years before it, back to y − years + 1; a year
        missing from the history is unknown."""
        now = self(category)
        past = self.frame[[*self.keys, "year"]].assign(_state=now)
        states = [now]
        for k in range(1, years):
            shifted = past.assign(year=past["year"] + k)
            states.append(
                self.frame[[*self.keys, "year"]]
                .merge(shifted, on=[*self.keys, "year"], how="left")["_state"]
                .to_numpy()
            )
        return _at_least(states, years)


def describe(cond: Condition) -> str:
    """A condition in words, for the reasons column and the documentation."""
    if isinstance(cond, str):
        return cond
    if "all" in cond:
        return "(" + " and ".join(describe(c) for c in cond["all"]) + ")"
    if "any" in cond:
        return "(" + " or ".join(describe(c) for c in cond["any"]) + ")"
    if "at_least" in cond:
        return f"at least {cond['at_least']} of ({', '.join(describe(c) for c in cond['of'])})"
    if "not" in cond:
        return f"not {describe(cond['not'])}"
    return f"{cond['held']} in each of the last {cond['years']} years"


def evaluate(
    table: pd.DataFrame,
    scheme: Scheme,
    keys: list[str],
    parameters: dict[str, float | None] | None = None,
    with_details: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Classify every row (one area in one year) of `table`; the area's other years are its history.

    Returns the results (`keys`, `year` and RESULT_COLUMNS, in the order of `table`) and, `with_details`, one
    row per area, year and criterion with the input value, the comparison, the threshold and whether it was
    met (missing: unknown). The reasons name the category's condition and the criteria met with their numbers."""
    params = {**scheme.parameters, **(parameters or {})}
    unknown = set(params) - set(scheme.parameters)
    if unknown:
        raise SchemeError(f"{scheme.id}: unknown parameter {', '.join(sorted(unknown))}")
    missing = scheme.columns() - set(table.columns)
    if missing:
        raise SchemeError(f"{scheme.id}: the input has no column {', '.join(sorted(missing))}")
    frame = table.reset_index(drop=True)
    base = frame[[*keys, "year", *sorted(scheme.columns())]].assign(
        **{p: (np.nan if v is None else float(v)) for p, v in params.items()}
    )
    inputs = _expressions(base, {i.name: i.expr for i in scheme.inputs}, f"{scheme.id}: inputs")
    inputs = pd.concat([frame[[*keys, "year"]], inputs], axis=1)
    averaged: dict[str, np.ndarray] = {}
    for i in scheme.inputs:
        if i.average_years > 1:
            inputs[i.name], averaged[i.name] = _trailing_mean(inputs, keys, i.name, i.average_years)
    for p, v in params.items():
        inputs[p] = np.nan if v is None else float(v)
    thresholds = _expressions(inputs, {c.id: c.threshold for c in scheme.criteria}, f"{scheme.id}: criteria thresholds")
    criteria = {
        c.id: _state(inputs[c.input].to_numpy(float), thresholds[c.id].to_numpy(float), c.op) for c in scheme.criteria
    }
    ev = _Evaluator(scheme, inputs, keys, criteria)
    n = len(frame)
    category = np.full(n, scheme.default, dtype=object)
    decided = np.zeros(n, dtype=bool)
    could_be = np.full(n, "", dtype=object)
    for cat in scheme.categories:
        s = ev(cat.id)
        open_ = ~decided & np.isnan(s)
        could_be[open_] += f"; could be {cat.id} ({describe(cat.when)}): undecided, inputs or earlier years missing"
        hit = ~decided & (s == 1)
        category[hit] = cat.id
        decided |= hit
    if scheme.undetermined:
        category[~decided & (could_be != "")] = scheme.undetermined
    why = {c.id: f"{c.id}: {describe(c.when)}" for c in scheme.categories}
    why[scheme.default] = f"{scheme.default}: no category's condition holds"
    if scheme.undetermined:
        why[scheme.undetermined] = f"{scheme.undetermined}: no category holds, and one could if inputs were known"
    head = np.array([why[c] for c in category], dtype=object) if n else np.array([], dtype=object)
    if scheme.population and scheme.min_population is not None:
        pop = inputs[scheme.population].to_numpy(float)
        low = np.isfinite(pop) & (pop < scheme.min_population)
        gone = ~np.isfinite(pop)
        floor = _numbers(np.array([scheme.min_population]))[0]
        category[low | gone] = scheme.default
        could_be[low | gone] = ""
        head[low] = f"{scheme.default}: {scheme.population} " + _numbers(pop[low]) + f" < minimum {floor}"
        head[gone] = f"{scheme.default}: {scheme.population} not available (minimum {floor})"
    reasons = head + could_be
    if scheme.criteria:
        met = [_met_text(c, inputs, thresholds[c.id], criteria[c.id], averaged.get(c.input)) for c in scheme.criteria]
        for label, parts in (
            ("met", met),
            ("not met", [np.where(criteria[c.id] == 0, c.id, "") for c in scheme.criteria]),
            ("unknown", [np.where(np.isnan(criteria[c.id]), c.id, "") for c in scheme.criteria]),
        ):
            listed = _join(parts, "; " if label == "met" else ", ", skip_empty=True)
            reasons = reasons + np.where(listed == "", "", f". {label.capitalize()}: " + listed)
    out = frame[[*keys, "year"]].copy()
    out["scheme"] = scheme.id
    out["version"] = scheme.version
    out["category"] = category
    out["criteria_met"] = _listed(scheme, criteria, lambda s: s == 1)
    out["criteria_unknown"] = _listed(scheme, criteria, np.isnan)
    out["score"], out["rank"] = _score(scheme, inputs, out, keys)
    if scheme.score is not None:
        unranked = (out["category"].isin(scheme.score.among) & out["rank"].isna()).to_numpy()
        gaps = _join(
            [np.where(np.isfinite(inputs[t].to_numpy(float)), "", t) for t in scheme.score.terms], ", ", skip_empty=True
        )
        reasons[unranked] += ". Not ranked: score input(s) " + gaps[unranked] + " not available"
    out["reasons"] = reasons
    if not with_details:
        return out[[*keys, "year", *RESULT_COLUMNS]], None
    m = len(scheme.criteria)
    details = pd.DataFrame(
        {
            **{k: np.tile(frame[k].to_numpy(), m) for k in [*keys, "year"]},
            "scheme": scheme.id,
            "criterion": np.repeat(np.array([c.id for c in scheme.criteria], dtype=object), n),
            "input": np.repeat(np.array([c.input for c in scheme.criteria], dtype=object), n),
            "value": np.concatenate([inputs[c.input].to_numpy(float) for c in scheme.criteria] or [np.zeros(0)]),
            "op": np.repeat(np.array([c.op for c in scheme.criteria], dtype=object), n),
            "threshold": np.concatenate([thresholds[c.id].to_numpy(float) for c in scheme.criteria] or [np.zeros(0)]),
            "met": pd.array(
                np.concatenate([criteria[c.id] for c in scheme.criteria] or [np.zeros(0)]), dtype="Float64"
            ).astype("boolean"),
        }
    )
    return out[[*keys, "year", *RESULT_COLUMNS]], details


def _numbers(v: np.ndarray) -> np.ndarray:
    """Numbers as shown in the reasons: up to three decimals, trailing zeros dropped; "n/a" when missing."""
    text = [f"{x:.3f}".rstrip("0").rstrip(".") if math.isfinite(x) else "n/a" for x in np.asarray(v, float).tolist()]
    return np.array([("0" if t == "-0" else t) for t in text], dtype=object)


def _met_text(c, inputs: pd.DataFrame, threshold: pd.Series, state: np.ndarray, years) -> np.ndarray:
    """ "id (input value op threshold)" where the criterion is met, else "" (formatted only where needed)."""
    out = np.full(len(state), "", dtype=object)
    hit = state == 1
    if hit.any():
        shown = f"{c.id} ({c.input} " + _numbers(inputs[c.input].to_numpy(float)[hit])
        if years is not None:
            shown = shown + " (mean of " + _numbers(years[hit]) + " yr)"
        out[hit] = shown + f" {c.op} " + _numbers(threshold.to_numpy(float)[hit]) + ")"
    return out


def _join(parts: list[np.ndarray], sep: str, skip_empty: bool = False) -> np.ndarray:
    """Element-wise `sep.join` over several arrays of strings (empty strings left out with `skip_empty`)."""
    rows = zip(*(p.tolist() for p in parts), strict=True)
    joined = [sep.join(x for x in row if x) for row in rows] if skip_empty else [sep.join(row) for row in rows]
    return np.array(joined, dtype=object)


def _listed(scheme: Scheme, criteria: dict[str, np.ndarray], test) -> np.ndarray:
    """Comma-separated ids of the criteria passing `test`, per row."""
    if not scheme.criteria:
        return np.full(len(next(iter(criteria.values()), [])), "", dtype=object)
    return _join([np.where(test(criteria[c.id]), c.id, "") for c in scheme.criteria], ",", skip_empty=True)


def _score(scheme: Scheme, inputs: pd.DataFrame, out: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sum of z-scores (across the areas of the same level and year); ranks 1, 2, … among the
    ranked categories, highest score first, ties by area key."""
    n = len(out)
    if scheme.score is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    group = [*keys[:-1], "year"]
    score = np.zeros(n)
    for name, weight in scheme.score.terms.items():
        x = inputs[name]
        g = x.groupby([inputs[k] for k in group], dropna=False)
        z = (x - g.transform("mean")) / g.transform("std", ddof=0)
        score = score + weight * z.to_numpy(float)
    ranked = out.assign(_score=score, _eligible=out["category"].isin(scheme.score.among) & np.isfinite(score))
    rank = np.full(n, np.nan)
    sub = ranked[ranked["_eligible"]].sort_values(
        [*group, "_score", keys[-1]], ascending=[True] * len(group) + [False, True]
    )
    rank[sub.index.to_numpy()] = sub.groupby(group, dropna=False).cumcount().to_numpy() + 1
    return score, rank

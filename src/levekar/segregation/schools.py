"""Segregation between schools and kindergartens, compared with where the children live (NOU 2020:16 ch. 3,
table 3.5 and figure 3.6).

From a register extract's `persons` (school_id, kindergarten_id), `institutions` and `catchments`:

- the composition of every institution (immigrant background — the proxy for minority-language pupils —,
  low-income households, parents' low education) and of the pupils resident in each school's catchment;
- indices between institutions (the existing single-group indices, units = schools) next to the same
  indices over the catchments (units = catchments, counting the resident pupils), per kommune and year; for
  kindergartens the residential counterpart places every enrolled child at its nearest kindergarten;
- table 3.5: schools with at least 50 %, more than 90 % and less than 10 % of the group (the report's wording:
  «50 prosent eller mer», «mer enn 90 prosent», «mindre enn 10 prosent»);
- uptake («oppslutning»): enrolled ÷ resident pupils of the catchment × 100, and local attendance (pupils of
  the catchment attending it);
- contrast pairs: schools with adjacent catchments whose shares differ by more than a threshold;
- kindergarten pairs: kindergartens of the same kommune at most a distance apart whose shares differ by more
  than a threshold (the situation the report's proposed admission rule is for).

Everything published goes through the catalogue's primary disclosure rule (`indicators.disclosure.primary`):
a suppressed institution keeps its row and flag but no count or share, and takes part in no class count or
pair. Threshold comparisons are made on the counts (x · 100 ≥ 50 · t), so the edges are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from levekar.geo.adjacency import polygon_adjacency
from levekar.indicators.catalogue import load_catalogue
from levekar.indicators.disclosure import primary, rule_columns
from levekar.segregation import indices as ix
from levekar.segregation.inputs import InputError, persons_where, register_groups

KINDERGARTEN = "barnehage"
# grades of each school type as ages in the autumn term (year − birth_year = grade + 5)
SCHOOL_AGES = {"grunnskole": (6, 15), "barneskole": (6, 12), "ungdomsskole": (13, 15)}
KINDERGARTEN_AGES = (1, 5)
SCHOOL_GROUPS = ("immigrant_background", "low_income_eu60", "parents_low_education")


@dataclass(frozen=True)
class Settings:
    """What the school and kindergarten tables compute; every threshold is in percent (points)."""

    groups: tuple[str, ...] = SCHOOL_GROUPS
    class_group: str = "immigrant_background"  # table 3.5's minority-language pupils (proxy)
    at_least: float = 50.0  # table 3.5: share ≥ this
    more_than: float = 90.0  # share > this
    less_than: float = 10.0  # share < this
    contrast_difference: float = 30.0  # neighbouring schools whose shares differ by more than this
    kindergarten_distance: float = 1000.0  # metres: kindergartens at most this far apart …
    kindergarten_difference: float = 30.0  # … whose shares differ by more than this
    replications: int = 99  # randomisation inference of the indices (0: none)
    seed: int = 2020


# --- reading -------------------------------------------------------------------------------------------------


def _table(extract_dir: Path, name: str) -> tuple[pd.DataFrame, Path]:
    for ext in ("parquet", "csv"):
        path = extract_dir / f"{name}.{ext}"
        if path.is_file():
            frame = (
                pd.read_parquet(path)
                if ext == "parquet"
                else duckdb.sql(f"SELECT * FROM read_csv_auto('{path}', header = true, all_varchar = true)").df()
            )
            return frame, path
    raise InputError(f"{extract_dir / name}.parquet: file not found (school results need institutions and catchments)")


def read_institutions(extract_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The extract's `institutions` and `catchments`, checked: named columns present, known types, numeric
    coordinates, catchments of schools only."""
    extract_dir = Path(extract_dir)
    inst, ipath = _table(extract_dir, "institutions")
    catch, cpath = _table(extract_dir, "catchments")
    for frame, path, cols in (
        (inst, ipath, ["institution_id", "type", "kommune", "x", "y"]),
        (catch, cpath, ["institution_id", "grunnkrets"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError(f"{path}: no column {', '.join(map(repr, missing))}; it has {', '.join(frame.columns)}")
    inst = inst.assign(institution_id=inst["institution_id"].astype(str), kommune=inst["kommune"].astype(str))
    known = set(SCHOOL_AGES) | {KINDERGARTEN}
    bad = ~inst["type"].isin(known)
    if bad.any():
        raise InputError(
            f"{ipath}: column 'type' must be one of {', '.join(sorted(known))}; {int(bad.sum())} row(s) are not, "
            f"e.g. {inst.loc[bad, 'institution_id'].iloc[0]!r}: {inst.loc[bad, 'type'].iloc[0]!r}"
        )
    for c in ("x", "y"):
        num = pd.to_numeric(inst[c], errors="coerce")
        if num.isna().any():
            i = int(np.flatnonzero(num.isna().to_numpy())[0])
            raise InputError(
                f"{ipath}: column {c!r} must be a coordinate in metres; e.g. row {i + 1}: {inst[c].iloc[i]!r}"
            )
        inst[c] = num.astype(float)
    dup = inst["institution_id"].duplicated()
    if dup.any():
        raise InputError(f"{ipath}: column 'institution_id' repeats, e.g. {inst.loc[dup, 'institution_id'].iloc[0]!r}")
    catch = catch.assign(institution_id=catch["institution_id"].astype(str), grunnkrets=catch["grunnkrets"].astype(str))
    kind = catch.merge(inst[["institution_id", "type"]], on="institution_id", how="left")["type"]
    bad = ~kind.isin(list(SCHOOL_AGES)).to_numpy()
    if bad.any():
        what = "is no institution" if pd.isna(kind[bad].iloc[0]) else f"is a {kind[bad].iloc[0]}"
        raise InputError(
            f"{cpath}: column 'institution_id' must name a school of institutions; {int(bad.sum())} row(s) do not, "
            f"e.g. {catch.loc[bad, 'institution_id'].iloc[0]!r} {what}"
        )
    return inst.sort_values("institution_id").reset_index(drop=True), catch


def check_references(persons: pd.DataFrame, inst: pd.DataFrame, path: Path) -> None:
    """school_id / kindergarten_id must name an institution of the right kind."""
    kinds = inst.set_index("institution_id")["type"]
    for col, ok in (("school_id", set(SCHOOL_AGES)), ("kindergarten_id", {KINDERGARTEN})):
        ids = persons[col].dropna()
        bad = ~ids.map(kinds).isin(ok)
        if bad.any():
            raise InputError(
                f"{path}: column {col!r} must name a {'school' if col == 'school_id' else 'kindergarten'} of "
                f"institutions; {int(bad.sum())} row(s) do not, e.g. {ids[bad].iloc[0]!r}"
            )


# --- pure computations (hand-testable) --------------------------------------------------------------------------


def composition(
    frame: pd.DataFrame, keys: Sequence[str], groups: Sequence[str], weight: str | None = None
) -> pd.DataFrame:
    """Per key: `total` persons and for each group `<g>` (in the group) and `<g>_total` (membership known)."""
    w = frame[weight].to_numpy(dtype=float) if weight else np.ones(len(frame))
    cols = {"total": w}
    for g in groups:
        v = frame[g]
        known = v.notna().to_numpy()
        cols[g] = np.where(known, v.fillna(False).to_numpy(dtype=bool), False) * w
        cols[f"{g}_total"] = known * w
    data = pd.DataFrame(cols, index=frame.index)
    data[list(keys)] = frame[list(keys)]
    return data.groupby(list(keys), as_index=False, sort=True)[list(cols)].sum()


def share_classes(
    count: np.ndarray, total: np.ndarray, at_least: float = 50.0, more_than: float = 90.0, less_than: float = 10.0
) -> dict[str, int]:
    """Table 3.5 over institutions with pupils: share ≥ at_least, > more_than, < less_than (percent), compared
    on the counts so that 50 of 100 is "at least 50" and 9 of 10 is not "more than 90"."""
    x, t = np.asarray(count, dtype=float), np.asarray(total, dtype=float)
    x, t = x[t > 0], t[t > 0]
    return {
        "at_least_50": int(np.sum(100 * x >= at_least * t)),
        "over_90": int(np.sum(100 * x > more_than * t)),
        "under_10": int(np.sum(100 * x < less_than * t)),
    }


def differs(xa: np.ndarray, ta: np.ndarray, xb: np.ndarray, tb: np.ndarray, points: float) -> np.ndarray:
    """|100 xa/ta − 100 xb/tb| > points, exactly: cross-multiplied counts instead of rounded shares."""
    xa, ta, xb, tb = (np.asarray(v, dtype=float) for v in (xa, ta, xb, tb))
    return np.abs(100 * (xa * tb - xb * ta)) > points * ta * tb


def contrast_pairs(pairs: pd.DataFrame, shares: pd.DataFrame, difference: float) -> pd.DataFrame:
    """Neighbouring schools (`pairs`: a, b) whose published shares (`shares`: institution_id, count, total)
    differ by more than `difference` points; a is the school with the higher share."""
    s = shares.set_index("institution_id")
    p = pairs[pairs["a"].isin(s.index) & pairs["b"].isin(s.index)]
    a, b = s.loc[p["a"]], s.loc[p["b"]]
    keep = differs(a["count"], a["total"], b["count"], b["total"], difference)
    return _ordered(p["a"].to_numpy()[keep], p["b"].to_numpy()[keep], a[keep], b[keep])


def _ordered(ia: np.ndarray, ib: np.ndarray, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    sa = 100 * a["count"].to_numpy(dtype=float) / a["total"].to_numpy(dtype=float)
    sb = 100 * b["count"].to_numpy(dtype=float) / b["total"].to_numpy(dtype=float)
    swap = sb > sa
    out = pd.DataFrame(
        {
            "institution_a": np.where(swap, ib, ia),
            "institution_b": np.where(swap, ia, ib),
            "share_a": np.where(swap, sb, sa),
            "share_b": np.where(swap, sa, sb),
        }
    )
    out["difference"] = out["share_a"] - out["share_b"]
    return out


def kindergarten_pairs(kgs: pd.DataFrame, distance: float, difference: float) -> pd.DataFrame:
    """Kindergartens (`kgs`: institution_id, kommune, x, y, count, total) of the same kommune at most
    `distance` metres apart whose shares differ by more than `difference` points; a has the higher share."""
    kgs = kgs[kgs["total"] > 0].reset_index(drop=True)
    if len(kgs) < 2:
        return _with_distance(_ordered(np.array([]), np.array([]), kgs.iloc[:0], kgs.iloc[:0]), np.array([]))
    xy = kgs[["x", "y"]].to_numpy(dtype=float)
    # the KD-tree's own `r` test is on rounded distances; take a margin and decide on the exact distance
    ij = cKDTree(xy).query_pairs(distance * (1 + 1e-9) + 1e-9, output_type="ndarray")
    i, j = (ij[:, 0], ij[:, 1]) if len(ij) else (np.array([], int), np.array([], int))
    dist = np.hypot(xy[i, 0] - xy[j, 0], xy[i, 1] - xy[j, 1])
    a, b = kgs.iloc[i], kgs.iloc[j]
    keep = (
        (dist <= distance)
        & (a["kommune"].to_numpy() == b["kommune"].to_numpy())
        & differs(a["count"], a["total"], b["count"], b["total"], difference)
    )
    out = _ordered(a["institution_id"].to_numpy()[keep], b["institution_id"].to_numpy()[keep], a[keep], b[keep])
    return _with_distance(out.assign(kommune=a["kommune"].to_numpy()[keep]), dist[keep])


def _with_distance(out: pd.DataFrame, dist: np.ndarray) -> pd.DataFrame:
    out["distance_m"] = np.round(np.asarray(dist, dtype=float), 1)
    return out


def grunnkrets_links(geography: gpd.GeoDataFrame, codes: pd.Series) -> pd.DataFrame:
    """Pairs of grunnkretser (of `codes`) that share a border (rook contiguity), with each code's validity."""
    g = geography[geography["grunnkrets"].isin(codes)].reset_index(drop=True)
    if len(g) < 2:
        return pd.DataFrame({"ga": pd.Series(dtype=str), "gb": pd.Series(dtype=str)})
    adj = polygon_adjacency(g.geometry.to_numpy(), np.zeros(len(g), dtype=int)).tocoo()
    code = g["grunnkrets"].to_numpy()
    return pd.DataFrame({"ga": code[adj.row], "gb": code[adj.col]})


def catchment_pairs(
    geography: gpd.GeoDataFrame, links: pd.DataFrame, catchments: pd.DataFrame, year: int
) -> pd.DataFrame:
    """Schools whose catchments share a border: some grunnkrets of one, valid in `year`, borders one of the
    other (`links` from `grunnkrets_links`; codes of other years are left out, as split codes overlap)."""
    valid = (geography["valid_from"] <= year) & (geography["valid_to"].fillna(9999) >= year)
    ok = set(geography.loc[valid, "grunnkrets"])
    links = links[links["ga"].isin(ok) & links["gb"].isin(ok)]
    c = catchments[["grunnkrets", "institution_id"]]
    m = links.merge(c.rename(columns={"grunnkrets": "ga", "institution_id": "a"}), on="ga").merge(
        c.rename(columns={"grunnkrets": "gb", "institution_id": "b"}), on="gb"
    )
    m = m[m["a"] < m["b"]][["a", "b"]].drop_duplicates()
    return m.sort_values(["a", "b"]).reset_index(drop=True)


# --- raw results (not for publication) --------------------------------------------------------------------------


def school_raw(persons: pd.DataFrame, inst: pd.DataFrame, catch: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """Per year and school: enrolled pupils and their groups, resident pupils of the catchment (of the school's
    grade ages; a grunnkrets in k catchments of the same grades counts 1/k in each) and their groups, local
    pupils (enrolled and living in the catchment), uptake and local share. Not disclosure-controlled."""
    schools = inst[inst["type"].isin(list(SCHOOL_AGES))]
    enrolled = composition(persons[persons["school_id"].notna()], ["year", "school_id"], groups).rename(
        columns={"school_id": "institution_id"}
    )
    # catchment × grade ages, with how many catchments of the same grades cover a grunnkrets
    ca = catch.merge(schools[["institution_id", "type"]], on="institution_id")
    lo = ca["type"].map(lambda t: SCHOOL_AGES[t][0]).to_numpy()
    hi = ca["type"].map(lambda t: SCHOOL_AGES[t][1]).to_numpy()
    rep = hi - lo + 1
    ca = ca.loc[ca.index.repeat(rep)].reset_index(drop=True)
    ca["age_autumn"] = np.repeat(lo, rep) + (np.arange(len(ca)) - np.repeat(np.cumsum(rep) - rep, rep))
    ca["weight"] = 1.0 / ca.groupby(["grunnkrets", "age_autumn"])["institution_id"].transform("size")
    lo_all, hi_all = min(a for a, _ in SCHOOL_AGES.values()), max(b for _, b in SCHOOL_AGES.values())
    kids = persons[persons["age_autumn"].between(lo_all, hi_all)]
    res = kids.merge(ca[["grunnkrets", "age_autumn", "institution_id", "weight"]], on=["grunnkrets", "age_autumn"])
    resident = composition(res, ["year", "institution_id"], groups, weight="weight")
    local = res[res["school_id"] == res["institution_id"]].groupby(["year", "institution_id"]).size()
    years = sorted(persons["year"].unique())
    grid = pd.MultiIndex.from_product([years, schools["institution_id"]], names=["year", "institution_id"]).to_frame(
        index=False
    )
    out = grid.merge(schools[["institution_id", "type", "kommune"]], on="institution_id")
    out = out.merge(enrolled, on=["year", "institution_id"], how="left")
    out = out.merge(
        resident.add_prefix("resident_").rename(
            columns={"resident_year": "year", "resident_institution_id": "institution_id"}
        ),
        on=["year", "institution_id"],
        how="left",
    )
    out["local"] = local.reindex(pd.MultiIndex.from_frame(out[["year", "institution_id"]])).to_numpy()
    has_catchment = out["institution_id"].isin(catch["institution_id"]).to_numpy()
    num = [c for c in out.columns if c not in ("year", "institution_id", "type", "kommune")]
    out[num] = out[num].fillna(0.0)
    out.loc[~has_catchment, [c for c in num if c.startswith("resident_") or c == "local"]] = np.nan
    out["uptake"] = np.where(out["resident_total"] > 0, 100 * out["total"] / out["resident_total"], np.nan)
    out["local_share"] = np.where(out["resident_total"] > 0, 100 * out["local"] / out["resident_total"], np.nan)
    return out.sort_values(["year", "institution_id"]).reset_index(drop=True)


def kindergarten_raw(persons: pd.DataFrame, inst: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """Per year and kindergarten: enrolled children and their groups, and (`nearest_…`) the enrolled children
    whose home is nearest to it — the composition if every child went to the nearest kindergarten."""
    kgs = inst[inst["type"] == KINDERGARTEN].reset_index(drop=True)
    kids = persons[persons["kindergarten_id"].notna()]
    enrolled = composition(kids, ["year", "kindergarten_id"], groups).rename(
        columns={"kindergarten_id": "institution_id"}
    )
    placed = kids[kids["x"].notna() & kids["y"].notna()]
    if len(kgs) and len(placed):
        _, near = cKDTree(kgs[["x", "y"]].to_numpy()).query(placed[["x", "y"]].to_numpy(dtype=float))
        placed = placed.assign(nearest=kgs["institution_id"].to_numpy()[near])
    else:
        placed = placed.assign(nearest=pd.Series(dtype=str))
    nearest = composition(placed, ["year", "nearest"], groups).rename(columns={"nearest": "institution_id"})
    years = sorted(persons["year"].unique())
    grid = pd.MultiIndex.from_product([years, kgs["institution_id"]], names=["year", "institution_id"]).to_frame(
        index=False
    )
    out = grid.merge(kgs[["institution_id", "type", "kommune", "x", "y"]], on="institution_id")
    out = out.merge(enrolled, on=["year", "institution_id"], how="left")
    n = nearest.add_prefix("nearest_").rename(
        columns={"nearest_year": "year", "nearest_institution_id": "institution_id"}
    )
    out = out.merge(n, on=["year", "institution_id"], how="left")
    num = [c for c in out.columns if c not in ("year", "institution_id", "type", "kommune", "x", "y")]
    out[num] = out[num].fillna(0.0)
    return out.sort_values(["year", "institution_id"]).reset_index(drop=True)


# --- published tables --------------------------------------------------------------------------------------------


def _suppressed(count: pd.Series, total: pd.Series, rule: dict) -> np.ndarray:
    return primary(count.to_numpy(dtype=float), total.to_numpy(dtype=float), rule_columns(rule))


def _long(raw: pd.DataFrame, kind: str, bases: dict[str, str], groups: Sequence[str], rule: dict) -> pd.DataFrame:
    """One row per year, institution, group and basis (enrolled / catchment / nearest): count, total, share,
    with the primary rule applied (a suppressed row keeps its key and flag only)."""
    parts = []
    for basis, prefix in bases.items():
        for g in groups:
            part = raw[["year", "institution_id", "kommune"]].assign(
                kind=kind, group=g, basis=basis, count=raw[prefix + g], total=raw[prefix + g + "_total"]
            )
            parts.append(part[part["total"].notna()])
    out = pd.concat(parts, ignore_index=True)
    out["share"] = np.where(out["total"] > 0, 100 * out["count"] / out["total"].where(out["total"] > 0, 1), np.nan)
    out["suppressed"] = _suppressed(out["count"], out["total"], rule)
    out.loc[out["suppressed"], ["count", "total", "share"]] = np.nan
    cols = ["year", "kind", "institution_id", "kommune", "group", "basis", "count", "total", "share", "suppressed"]
    return (
        out[cols]
        .astype({"year": "int64"})
        .sort_values(["year", "kind", "institution_id", "group", "basis"])
        .reset_index(drop=True)
    )


def _sum_hidden(raw: pd.DataFrame, uptake: pd.DataFrame, rule: dict) -> bool:
    """Whether a kommune's total of local pupils must stay hidden. The total minus the published schools is
    the sum over the schools whose local count is hidden: none, or at least two whose summed local count
    passes the primary rule against their summed resident and enrolled pupils (the rule for a relation with
    a published total, as in `indicators.disclosure`)."""
    hidden = raw["institution_id"].isin(uptake.loc[uptake["local_suppressed"], "institution_id"])
    h = raw[hidden]
    one = pd.Series
    if _suppressed(one([raw["local"].sum()]), one([raw["resident_total"].sum()]), rule)[0] or len(h) == 1:
        return True
    if len(h) == 0:
        return False
    lo = one([h["local"].sum()])
    return bool(
        _suppressed(lo, one([h["resident_total"].sum()]), rule)[0] or _suppressed(lo, one([h["total"].sum()]), rule)[0]
    )


def _scopes(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """Each kommune, then the country when there is more than one."""
    out = [("kommune", str(k), f) for k, f in frame.groupby("kommune", sort=True)]
    return out if len(out) == 1 else [*out, ("country", "0", frame)]


def _institution_indices(
    raw: pd.DataFrame,
    kind: str,
    bases: dict[str, str],
    groups: Sequence[str],
    replications: int,
    seed: int,
    rule: dict,
) -> list[dict]:
    """Indices over the institutions (or their catchments) whose own cell is published: an index over units
    with hidden counts is one more equation in those counts, which with the published totals could reveal
    them; over published units only, it is a function of published numbers. `units` says how many entered."""
    rows = []
    for year, yf in raw.groupby("year", sort=True):
        for scope_level, scope_code, f in _scopes(yf):
            for g in groups:
                for basis, prefix in bases.items():
                    x, t = f[prefix + g].to_numpy(dtype=float), f[prefix + g + "_total"].to_numpy(dtype=float)
                    ok = np.isfinite(t) & (t > 0)
                    ok &= ~primary(np.nan_to_num(x), np.nan_to_num(t), rule_columns(rule))
                    key = {
                        "year": int(year),
                        "kind": kind,
                        "scope_level": scope_level,
                        "scope_code": scope_code,
                        "group": g,
                        "basis": basis,
                        "units": int(ok.sum()),
                    }
                    pair = np.column_stack([x[ok], t[ok] - x[ok]])
                    rows += [{**key, **r} for r in ix.index_rows(pair, replications, seed)]
    return rows


def school_tables(
    extract_dir: str | Path,
    years: Sequence[int] | None = None,
    settings: Settings = Settings(),
    rule: dict | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    geography: gpd.GeoDataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The school and kindergarten tables as published (primary disclosure rule applied):

    - `segregation_institution_composition`: per year, institution, group and basis (enrolled; catchment
      residents for schools), count, total, share (percent), suppressed;
    - `segregation_institution_indices`: indices between institutions (basis `enrolled`) and over catchments
      (`catchment`) or nearest-kindergarten areas (`nearest`), per year, kommune / country and group;
    - `segregation_school_uptake`: enrolled, resident, uptake (%), local, local share (%), with flags;
    - `segregation_school_classes`: table 3.5 per year and kommune / country, local attendance, uptake range;
    - `segregation_contrast_pairs`, `segregation_kindergarten_pairs`.

    `rule` is a catalogue disclosure rule (default: the packaged catalogue's `default`); `con` a connection
    from `register_groups` (made when not given), `geography` the extract's polygons (read when not given)."""
    extract_dir = Path(extract_dir)
    rule = rule or load_catalogue().disclosure_rules["default"]
    inst, catch = read_institutions(extract_dir)
    unknown = sorted({settings.class_group} - set(settings.groups))
    if unknown:
        raise InputError(f"class group {unknown[0]!r} must be one of the groups {', '.join(settings.groups)}")
    con = con or register_groups(extract_dir, years)
    lo = min(KINDERGARTEN_AGES[0], *(a for a, _ in SCHOOL_AGES.values()))
    hi = max(KINDERGARTEN_AGES[1], *(b for _, b in SCHOOL_AGES.values()))
    year_filter = f"AND year IN ({', '.join(str(int(y)) for y in years)})" if years is not None else ""
    persons = persons_where(
        con,
        f"(age_autumn BETWEEN {lo} AND {hi} OR school_id IS NOT NULL OR kindergarten_id IS NOT NULL) {year_filter}",
    )
    check_references(persons, inst, extract_dir / "persons.parquet")
    groups = list(settings.groups)
    sraw = school_raw(persons, inst, catch, groups)
    kraw = kindergarten_raw(persons, inst, groups)

    composition_t = pd.concat(
        [
            _long(sraw, "school", {"enrolled": "", "catchment": "resident_"}, groups, rule),
            _long(kraw, "kindergarten", {"enrolled": ""}, groups, rule),
        ],
        ignore_index=True,
    )
    reps, seed = settings.replications, settings.seed
    indices_t = pd.DataFrame(
        _institution_indices(sraw, "school", {"enrolled": "", "catchment": "resident_"}, groups, reps, seed, rule)
        + _institution_indices(kraw, "kindergarten", {"enrolled": "", "nearest": "nearest_"}, groups, reps, seed, rule)
    )

    # uptake: sizes under the minimum are hidden; the local count is protected against both its totals
    # (resident − local = pupils who go elsewhere, enrolled − local = pupils from outside)
    up = sraw[
        ["year", "institution_id", "kommune", "total", "resident_total", "uptake", "local", "local_share"]
    ].rename(columns={"total": "enrolled", "resident_total": "resident"})
    has = up["resident"].notna().to_numpy()
    zero = pd.Series(np.zeros(len(up)))
    size_hidden = _suppressed(zero, up["enrolled"], rule) | (has & _suppressed(zero, up["resident"].fillna(0), rule))
    local_hidden = has & (
        size_hidden
        | _suppressed(up["local"].fillna(0), up["resident"].fillna(0), rule)
        | _suppressed(up["local"].fillna(0), up["enrolled"], rule)
    )
    up["uptake_suppressed"], up["local_suppressed"] = size_hidden, local_hidden
    up.loc[size_hidden, ["enrolled", "resident", "uptake"]] = np.nan
    up.loc[local_hidden, ["local", "local_share"]] = np.nan

    # table 3.5 and the kommune summaries, over the published cells only
    enrolled_cls = composition_t[
        (composition_t["kind"] == "school")
        & (composition_t["group"] == settings.class_group)
        & (composition_t["basis"] == "enrolled")
    ]
    class_rows = []
    for year, yf in sraw.groupby("year", sort=True):
        for scope_level, scope_code, f in _scopes(yf):
            pub = enrolled_cls[
                (enrolled_cls["year"] == year) & enrolled_cls["institution_id"].isin(f["institution_id"])
            ]
            shown = pub[~pub["suppressed"] & (pub["total"] > 0)]
            u = up[(up["year"] == year) & up["institution_id"].isin(f["institution_id"])]
            loc = f[f["resident_total"].notna()]
            local, resident = float(loc["local"].sum()), float(loc["resident_total"].sum())
            if scope_level == "country":  # the country is the sum of its kommuner: shown when they all are
                hide = bool(np.isnan([r["local_attendance"] for r in class_rows if r["year"] == year]).any())
            else:
                hide = _sum_hidden(loc, u, rule)
            class_rows.append(
                {
                    "year": int(year),
                    "scope_level": scope_level,
                    "scope_code": scope_code,
                    "group": settings.class_group,
                    "schools": int((f["total"] > 0).sum()),
                    "classified": len(shown),
                    **share_classes(
                        shown["count"], shown["total"], settings.at_least, settings.more_than, settings.less_than
                    ),
                    "local_attendance": np.nan if hide or resident <= 0 else 100 * local / resident,
                    "uptake_min": float(u["uptake"].min()) if u["uptake"].notna().any() else np.nan,
                    "uptake_max": float(u["uptake"].max()) if u["uptake"].notna().any() else np.nan,
                }
            )
    classes_t = pd.DataFrame(class_rows).rename(
        columns={
            "at_least_50": f"at_least_{settings.at_least:g}",
            "over_90": f"over_{settings.more_than:g}",
            "under_10": f"under_{settings.less_than:g}",
        }
    )

    # pairs, among the published shares only
    geography = geography if geography is not None else gpd.read_parquet(extract_dir / "geography.parquet")
    kommune = inst.set_index("institution_id")["kommune"]
    uptake = up.set_index(["year", "institution_id"])["uptake"]
    contrast, kg_pairs = [], []
    links = grunnkrets_links(geography, catch["grunnkrets"])
    for year in sorted(sraw["year"].unique()):
        adjacent = catchment_pairs(geography, links, catch, int(year))
        for g in groups:
            pub = composition_t[
                (composition_t["year"] == year) & (composition_t["group"] == g) & (composition_t["basis"] == "enrolled")
                & ~composition_t["suppressed"] & (composition_t["total"] > 0)
            ]  # fmt: skip
            schools = pub[pub["kind"] == "school"]
            c = contrast_pairs(adjacent, schools[["institution_id", "count", "total"]], settings.contrast_difference)
            c = c.assign(year=int(year), group=g, kommune_a=kommune.reindex(c["institution_a"]).to_numpy(),
                         kommune_b=kommune.reindex(c["institution_b"]).to_numpy())  # fmt: skip
            c["uptake_a"] = uptake.reindex(pd.MultiIndex.from_arrays([c["year"], c["institution_a"]])).to_numpy()
            c["uptake_b"] = uptake.reindex(pd.MultiIndex.from_arrays([c["year"], c["institution_b"]])).to_numpy()
            contrast.append(c)
            kg = pub[pub["kind"] == "kindergarten"].merge(inst[["institution_id", "x", "y"]], on="institution_id")
            k = kindergarten_pairs(kg, settings.kindergarten_distance, settings.kindergarten_difference)
            kg_pairs.append(k.assign(year=int(year), group=g))
    contrast_cols = ["year", "group", "institution_a", "institution_b", "kommune_a", "kommune_b", "share_a",
                     "share_b", "difference", "uptake_a", "uptake_b"]  # fmt: skip
    kg_cols = ["year", "group", "institution_a", "institution_b", "kommune", "distance_m", "share_a", "share_b",
               "difference"]  # fmt: skip
    return {
        "segregation_institution_composition": composition_t,
        "segregation_institution_indices": indices_t,
        "segregation_school_uptake": up.astype({"year": "int64"})
        .sort_values(["year", "institution_id"])
        .reset_index(drop=True),
        "segregation_school_classes": classes_t,
        "segregation_contrast_pairs": _sorted(contrast, contrast_cols),
        "segregation_kindergarten_pairs": _sorted(kg_pairs, kg_cols),
    }


def _sorted(parts: list[pd.DataFrame], cols: list[str]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:  # typed, so that an empty table has the same schema as a full one
        text = ("group", "institution_a", "institution_b", "kommune", "kommune_a", "kommune_b")
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "year" else "string" if c in text else "float64") for c in cols}
        )
    out = pd.concat(parts, ignore_index=True)[cols]
    return out.sort_values(["year", "group", "institution_a", "institution_b"]).reset_index(drop=True)

"""`levekar validate`: every corruption is reported with its file and column, and nothing is written."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.schema.validate import validate_extract
from levekar.synth.generate import generate, write_extract


def _set(table: pa.Table, column: str, row: int, value, typ: pa.DataType | None = None) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    typ = typ or table.schema.field(column).type
    i = table.schema.get_field_index(column)
    return table.set_column(i, pa.field(column, typ), pa.array(values, typ))


def _as_text(table: pa.Table, column: str, row: int, value: str) -> pa.Table:
    values = [None if v is None else str(v) for v in table.column(column).to_pylist()]
    values[row] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, pa.field(column, pa.string()), pa.array(values, pa.string()))


def _first_where(table: pa.Table, mask) -> int:
    idx = pc.indices_nonzero(mask).to_pylist()
    assert idx, "no row to corrupt"
    return idx[0]


# Each corruption: (name, table, function(table, row) -> table, expected column, expected check)
def _immigrant_row(t):
    return _first_where(t, pc.equal(t["innvandringskategori"], "B"))


def _native_row(t):
    return _first_where(t, pc.equal(t["innvandringskategori"], "A"))


def _died_row_seen_later(t):
    first_year = pc.min(t["year"]).as_py()
    later = set(pc.filter(t["person_id"], pc.greater(t["year"], first_year)).to_pylist())
    ids = t["person_id"].to_pylist()
    years = t["year"].to_pylist()
    return next(i for i, (p, y) in enumerate(zip(ids, years, strict=True)) if y == first_year and p in later)


CORRUPTIONS = [
    ("null_required", "persons", lambda t, r: _set(t, "grunnkrets", r, None), "grunnkrets", "required"),
    ("null_sex", "persons", lambda t, r: _set(t, "sex", r, None), "sex", "required"),
    ("bad_sex_code", "persons", lambda t, r: _set(t, "sex", r, 3), "sex", "code"),
    ("bad_category", "persons", lambda t, r: _set(t, "innvandringskategori", r, "X"), "innvandringskategori", "code"),
    ("bad_background", "persons", lambda t, r: _set(t, "landbakgrunn", r, "mars"), "landbakgrunn", "code"),
    ("short_grunnkrets", "persons", lambda t, r: _set(t, "grunnkrets", r, "0301011"), "grunnkrets", "pattern"),
    ("unknown_grunnkrets", "persons", lambda t, r: _set(t, "grunnkrets", r, "99999999"), "grunnkrets", "reference"),
    ("birth_year_range", "persons", lambda t, r: _set(t, "birth_year", r, 1700), "birth_year", "range"),
    ("birth_year_text", "persons", lambda t, r: _as_text(t, "birth_year", r, "19x0"), "birth_year", "type"),
    ("grade_points_range", "persons", lambda t, r: _set(t, "grade_points", r, 75.0), "grade_points", "range"),
    ("dangling_household", "persons", lambda t, r: _set(t, "household_id", r, 10**12), "household_id", "reference"),
    ("dangling_dwelling", "persons", lambda t, r: _set(t, "dwelling_id", r, 10**12), "dwelling_id", "reference"),
    ("unknown_school", "persons", lambda t, r: _set(t, "school_id", r, "NOPE"), "school_id", "reference"),
    ("born_after_year", "persons", lambda t, r: _set(t, "birth_year", r, 2099), "birth_year,year", "born_before_year"),
    (
        "botid_for_native",
        "persons",
        lambda t, r: _set(t, "botid", _native_row(t), 3),
        "botid,innvandringskategori",
        "botid_only_for_immigrants",
    ),
    (
        "botid_missing",
        "persons",
        lambda t, r: _set(t, "botid", _immigrant_row(t), None),
        "botid,innvandringskategori",
        "botid_only_for_immigrants",
    ),
    (
        "life_after_death",
        "persons",
        lambda t, r: _set(t, "died_in_year", _died_row_seen_later(t), True),
        "died_in_year,year",
        "no_life_after_death",
    ),
    (
        "duplicate_person_year",
        "persons",
        lambda t, r: pa.concat_tables([t, t.slice(r, 1)]),
        "person_id,year",
        "unique_key",
    ),
    ("dropped_column", "persons", lambda t, r: t.drop_columns(["employed"]), "employed", "missing_column"),
    (
        "pupil_not_in_education",
        "persons",
        lambda t, r: _set(t, "in_education", _first_where(t, pc.is_valid(t["school_id"])), False),
        "school_id,in_education",
        "pupils_are_in_education",
    ),
    ("negative_transfers", "households", lambda t, r: _set(t, "income_transfers", r, -5), "income_transfers", "range"),
    ("null_income", "households", lambda t, r: _set(t, "income_after_tax", r, None), "income_after_tax", "required"),
    ("bad_tenure", "dwellings", lambda t, r: _set(t, "tenure", r, "eier"), "tenure", "code"),
    ("zero_rooms", "dwellings", lambda t, r: _set(t, "rooms", r, 0), "rooms", "range"),
    ("x_outside_norway", "dwellings", lambda t, r: _set(t, "x", r, 5e6), "x", "range"),
    (
        "duplicate_dwelling",
        "dwellings",
        lambda t, r: pa.concat_tables([t, t.slice(r, 1)]),
        "dwelling_id,year",
        "unique_key",
    ),
    ("bad_kommune", "institutions", lambda t, r: _set(t, "kommune", r, "301"), "kommune", "pattern"),
    ("bad_institution_type", "institutions", lambda t, r: _set(t, "type", r, "universitet"), "type", "code"),
    (
        "share_over_one",
        "grunnkrets_changes",
        lambda t, r: _set(t, "population_share", 0, 1.5),
        "population_share",
        "range",
    ),
    ("bad_direction", "migrations", lambda t, r: _set(t, "direction", r, "sideways"), "direction", "code"),
]


@pytest.fixture(scope="module")
def tables(tiny_dir: Path) -> dict[str, pa.Table]:
    return {p.stem: pq.read_table(p) for p in tiny_dir.glob("*.parquet") if p.stem != "geography"}


def _write_corrupted(tiny_dir: Path, target: Path, name: str, table: pa.Table) -> None:
    for p in tiny_dir.iterdir():
        if p.stem != name:
            shutil.copy(p, target / p.name)
    pq.write_table(table, target / f"{name}.parquet")


def test_every_preset_extract_is_valid(tiny_dir):
    assert validate_extract(tiny_dir) == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruption=st.sampled_from(CORRUPTIONS), fraction=st.floats(0, 1, exclude_max=True))
def test_corruption_is_located(tiny_dir, tables, corruption, fraction):
    name, table_name, corrupt, column, check = corruption
    table = tables[table_name]
    row = int(fraction * table.num_rows)
    bad = corrupt(table, row)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp)
        _write_corrupted(tiny_dir, target, table_name, bad)
        before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in target.iterdir())
        problems = validate_extract(target)
        after = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in target.iterdir())
    assert before == after, "validation must write nothing"
    hits = [p for p in problems if p.file == f"{table_name}.parquet" and p.column == column and p.check == check]
    assert hits, f"{name}: expected {table_name}.parquet [{column}] {check}, got {[str(p) for p in problems]}"
    p = hits[0]
    if check != "missing_column":
        assert p.rows >= 1 and p.example, str(p)


def test_example_names_the_offending_value(tiny_dir, tables, tmp_path):
    _write_corrupted(tiny_dir, tmp_path, "persons", _set(tables["persons"], "sex", 5, 7))
    (p,) = [p for p in validate_extract(tmp_path) if p.check == "code"]
    assert p.file == "persons.parquet" and p.column == "sex" and p.rows == 1
    assert "sex=7" in p.example and "row 6" in p.example


def test_missing_file_and_folder(tiny_dir, tmp_path):
    for p in tiny_dir.iterdir():
        if p.stem != "households":
            shutil.copy(p, tmp_path / p.name)
    problems = validate_extract(tmp_path)
    assert any(p.file == "households.parquet" and p.check == "missing_file" for p in problems)
    assert validate_extract(tmp_path / "nope")[0].check == "missing_dir"


def test_csv_input_is_accepted_and_checked(tiny_dir, tables, tmp_path):
    for p in tiny_dir.iterdir():
        if p.stem != "households":
            shutil.copy(p, tmp_path / p.name)
    pacsv.write_csv(tables["households"], tmp_path / "households.csv")
    assert validate_extract(tmp_path) == []
    text = (tmp_path / "households.csv").read_text().splitlines()
    cells = text[3].split(",")
    cells[2] = "mange"  # income_total
    text[3] = ",".join(cells)
    (tmp_path / "households.csv").write_text("\n".join(text) + "\n")
    (p,) = validate_extract(tmp_path)
    assert (p.file, p.column, p.check, p.rows) == ("households.csv", "income_total", "type", 1)
    assert "'mange'" in p.example and "row 3" in p.example


def test_integer_grunnkrets_loses_leading_zero(tiny_dir, tables, tmp_path):
    t = tables["persons"]
    leading_zero = pc.sum(pc.starts_with(t["grunnkrets"], "0").cast(pa.int64())).as_py()
    assert leading_zero > 0
    i = t.schema.get_field_index("grunnkrets")
    t = t.set_column(i, pa.field("grunnkrets", pa.int64()), pc.cast(t["grunnkrets"], pa.int64()))
    _write_corrupted(tiny_dir, tmp_path, "persons", t)
    problems = validate_extract(tmp_path)
    assert any(p.column == "grunnkrets" and p.check == "pattern" and p.rows == leading_zero for p in problems)


def test_cli_validate_exit_codes(tiny_dir, tables, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(tiny_dir)])
    assert ok.exit_code == 0, ok.output
    _write_corrupted(tiny_dir, tmp_path, "dwellings", _set(tables["dwellings"], "tenure", 0, "eier"))
    bad = runner.invoke(app, ["validate", str(tmp_path), "--json"])
    assert bad.exit_code == 2
    assert '"file": "dwellings.parquet"' in bad.output and '"column": "tenure"' in bad.output


def test_synth_refuses_to_overwrite_and_writes_atomically(tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_extract(generate("tiny", seed=1), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"


def _copy_except(tiny_dir, target, stem):
    for p in tiny_dir.iterdir():
        if p.stem != stem:
            shutil.copy(p, target / p.name)


def test_csv_encodings(tiny_dir, tables, tmp_path):
    _copy_except(tiny_dir, tmp_path, "households")
    pacsv.write_csv(tables["households"], tmp_path / "h.csv")
    text = (tmp_path / "h.csv").read_text()
    (tmp_path / "h.csv").unlink()
    (tmp_path / "households.csv").write_bytes("\ufeff".encode() + text.encode())  # BOM: accepted
    assert validate_extract(tmp_path) == []
    (tmp_path / "households.csv").write_bytes(text.replace("household_id", "husholdning_nr_ø").encode("latin-1"))
    (p,) = validate_extract(tmp_path)
    assert (p.file, p.check) == ("households.csv", "unreadable") and "UTF-8" in p.message


def test_unreadable_keys_are_not_also_duplicates(tiny_dir, tables, tmp_path):
    _copy_except(tiny_dir, tmp_path, "households")
    h = _as_text(_as_text(tables["households"], "household_id", 0, "x"), "household_id", 1, "x")
    pacsv.write_csv(h, tmp_path / "households.csv")
    problems = validate_extract(tmp_path)
    assert {(p.file, p.column, p.check) for p in problems if p.file == "households.csv"} == {
        ("households.csv", "household_id", "type")
    }


def test_decimals_in_integer_columns(tiny_dir, tables, tmp_path):
    t = tables["households"]
    i = t.schema.get_field_index("income_total")
    values = pc.add(pc.cast(t["income_total"], pa.float64()), 0.4)
    _write_corrupted(tiny_dir, tmp_path, "households", t.set_column(i, pa.field("income_total", pa.float64()), values))
    problems = validate_extract(tmp_path)
    assert any(p.column == "income_total" and p.check == "type" and p.rows == t.num_rows for p in problems)


def test_geography_without_its_key_column(tiny_dir, tmp_path):
    import geopandas as gpd

    _copy_except(tiny_dir, tmp_path, "geography")
    gpd.read_parquet(tiny_dir / "geography.parquet").rename(columns={"grunnkrets": "krets"}).to_parquet(
        tmp_path / "geography.parquet"
    )
    problems = validate_extract(tmp_path)
    assert any(
        p.file == "geography.parquet" and p.column == "grunnkrets" and p.check == "missing_column" for p in problems
    )


def test_examples_are_deterministic(tiny_dir, tables, tmp_path):
    t = tables["persons"]
    _write_corrupted(tiny_dir, tmp_path, "persons", pa.concat_tables([t, t.slice(100, 50)]))
    first = [p for p in validate_extract(tmp_path) if p.check == "unique_key"]
    for _ in range(3):
        assert [p for p in validate_extract(tmp_path) if p.check == "unique_key"] == first

"""The command line is a thin shell: exit codes, messages, refusal to overwrite."""

from typer.testing import CliRunner

from levekar.cli.main import app

runner = CliRunner()


def test_synth_writes_validates_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "tiny"
    first = runner.invoke(app, ["synth", "--preset", "tiny", "--seed", "3", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "synthetic" in first.output and (out / "manifest.json").exists()
    again = runner.invoke(app, ["synth", "--preset", "tiny", "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(app, ["synth", "--preset", "tiny", "--seed", "4", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output


def test_unknown_preset_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["synth", "--preset", "bergen", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown preset" in result.output
    assert not (tmp_path / "x").exists()


def test_validate_missing_folder(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "extract folder not found" in result.output

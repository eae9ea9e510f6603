"""README's generated tables (params, commands) against their sources: a drift fails here with the
command that regenerates them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.__main__ import app
from pipeline.cli import docs
from pipeline.core.params import Params, TuneParams

from helpers import PROJECT

README = PROJECT / "README.md"


@pytest.mark.unit
def test_readme_tables_match_the_model_and_the_cli():
    stale = docs.stale(README.read_text(encoding="utf-8"), docs.tables())
    assert not stale, f"README.md's {', '.join(stale)} differ from the code; regenerate: {docs.REGENERATE}"


@pytest.mark.unit
def test_every_param_has_a_description_and_its_allowed_values():
    rows = list(docs.params_rows())
    assert {k for k, *_ in rows} >= {
        "describe.source",
        "describe.llama_cpp.model",
        "datasets.<name>.data.bad_images",
    }
    assert all(help_ for *_, help_ in rows), [k for k, _, _, h in rows if not h]
    source = next(r for r in rows if r[0] == "describe.source")
    assert source[1] == "`llama_cpp`" and all(f"`{v}`" in source[2] for v in ("templates", "file", "vllm", "openai"))


@pytest.mark.unit
def test_a_changed_default_makes_the_readme_stale(monkeypatch):
    readme = README.read_text(encoding="utf-8")
    monkeypatch.setattr(TuneParams.model_fields["epochs"], "default", 7)
    assert docs.stale(readme, docs.tables()) == ["params-table"]
    regenerated = docs.render(readme, docs.tables())
    assert "| `tune.epochs` | `7` |" in regenerated and docs.stale(regenerated, docs.tables()) == []


@pytest.mark.unit
def test_a_new_command_makes_the_readme_stale(monkeypatch):
    readme = README.read_text(encoding="utf-8")
    assert docs.stale(readme, {"cli-table": docs.commands_table(app)}) == []

    @app.command("extra-command")
    def extra() -> None:
        """An extra command."""

    try:
        assert docs.stale(readme, {"cli-table": docs.commands_table(app)}) == ["cli-table"]
    finally:
        app.registered_commands.pop()


@pytest.mark.unit
def test_docs_write_regenerates_in_place(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "x\n<!-- params-table:start -->\nold\n<!-- params-table:end -->\n<!-- cli-table:start -->\n"
        "<!-- cli-table:end -->\ny\n"
    )
    result = CliRunner().invoke(app, ["docs", "--write", "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    text = readme.read_text()
    assert (
        "\nold\n" not in text and docs.params_table(Params) in text and text.startswith("x\n") and text.endswith("y\n")
    )
    assert "up to date" in CliRunner().invoke(app, ["docs", "--write", "--readme", str(readme)]).output

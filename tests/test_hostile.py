"""Hostile and odd input a notebook, a schedule or a project can hold: placeholders that would read attributes or
blow up a path, files that are devices or pipes, names that would share a file, outputs left as something else,
one cell printing more than the cap. Each gets a clear problem or a failed task, never a hang or an internal error,
and nothing already produced is lost. Real kernels where something runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

import nbflow
from nbflow.errors import PipelineError, UsageError
from nbflow.params import MAX_FILLED, PlaceholderError, fill, placeholders

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{x!r}.txt", "{x!r} converts the value; a placeholder is a name only: write {x}"),
        ("{x.__class__}.txt", "{x.__class__} is not a parameter name"),
        ("{x[0]}.txt", "{x[0]} is not a parameter name"),
        ("{datetime.__format__.__globals__[os].environ}", "is not a parameter name"),
        ("{x:>3000000000}.txt", "a format applies to a date (a strftime format such as %Y%m) or a number"),
        ("{n:>3000000000}.txt", "a format applies to a date"),
        ("{x:{n}}.txt", "a format cannot hold a placeholder"),
        ("{x", "is not a valid template (expected '}' before end of string)"),
        ("x}", "is not a valid template"),
    ],
)
def test_a_placeholder_is_a_name_and_nothing_else(template, message):
    with pytest.raises(PlaceholderError) as caught:
        fill(template, {"x": "v", "n": 7})
    assert message in str(caught.value)


def test_placeholders_fill_names_dates_and_number_formats_within_a_bound():
    from datetime import date

    assert fill("a/{x}/{n:03d}_{d:%Y%m}.csv", {"x": "v", "n": 7, "d": date(2026, 11, 2)}) == "a/v/007_202611.csv"
    assert placeholders("{region}_{report_date:%Y}") == ["region", "report_date"]
    with pytest.raises(PlaceholderError, match=f"fills to more than {MAX_FILLED:,} characters"):
        fill("{x}.txt", {"x": "y" * (MAX_FILLED + 1)})


@pytest.mark.parametrize("path", ["{x!r}.txt", "{x.__class__}.txt", "{x:>3000000000}.txt", "{x"])
def test_a_bad_placeholder_in_a_path_is_a_problem_naming_the_notebook(tmp_path, path):
    write_notebook(tmp_path / "a.ipynb", f'x = "v"\noutputs = ["{path}"]')
    with pytest.raises(PipelineError) as caught:
        nbflow.load(tmp_path)
    assert "a.ipynb: parameters cell:" in str(caught.value)


def test_a_schedule_parameter_cannot_read_the_environment(tmp_path):
    from nbflow.schedule.api import check_params

    with pytest.raises(UsageError) as caught:
        check_params({"leak": "{datetime.__format__.__globals__[os].environ}"})
    assert "parameter `leak`" in str(caught.value) and "is not a parameter name" in str(caught.value)
    assert check_params({"day": "{date:%Y%m%d}"}) == {"day": "{date:%Y%m%d}"}


def test_inputs_that_are_devices_or_pipes_are_problems_not_hangs(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    write_notebook(tmp_path / "a.ipynb", 'inputs = ["/dev/zero", "pipe"]\noutputs = ["o.txt"]')
    write_notebook(tmp_path / "b.ipynb", 'outputs = ["link.txt"]')
    os.symlink("/dev/zero", tmp_path / "link.txt")  # an output symlinked to a device
    for command in (["status"], ["run", "--dry-run"], ["run"]):
        result = run_cli(*command, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert "input pipe is a FIFO (named pipe), not a regular file" in result.stderr
        assert "/dev/zero is a character device" in result.stderr
        assert "a.ipynb: input" in result.stderr and "b.ipynb: output link.txt is a character device" in result.stderr


def test_a_glob_matching_a_pipe_is_hashed_by_its_kind_without_reading_it(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("1")
    os.mkfifo(tmp_path / "in" / "b.csv")
    write_notebook(tmp_path / "t.ipynb", 'inputs = ["in/*.csv"]\noutputs = ["o.txt"]', "open('o.txt', 'w').write('o')")
    result = run_cli("run", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    again = run_cli("run", cwd=tmp_path, timeout=60)
    assert again.returncode == 0 and "skipped" in again.stdout


def test_tasks_whose_names_differ_only_where_file_names_cannot_keep_their_own_notebooks(tmp_path):
    (tmp_path / "nbflow.toml").write_text("")
    write_notebook(
        tmp_path / "x" / "b.ipynb", 'outputs = ["one.txt"]', "open('one.txt', 'w').write('1')", "print('I am x/b')"
    )
    write_notebook(tmp_path / "y" / "b.ipynb", 'outputs = ["three.txt"]', "open('three.txt', 'w').write('3')")
    write_notebook(
        tmp_path / "x__b.ipynb", 'outputs = ["two.txt"]', "open('two.txt', 'w').write('2')", "print('I am x__b')"
    )
    run = nbflow.load(tmp_path).run()
    assert sorted(run.tasks) == ["x/b", "x__b", "y/b"] and run.state == "succeeded"
    shown = json.loads(run_cli("show", "latest", "--json", cwd=tmp_path).stdout)
    notebooks = {t["name"]: t["output_notebook"] for t in shown["tasks"]}
    assert len(set(notebooks.values())) == 3
    for name, said in (("x/b", "I am x/b"), ("x__b", "I am x__b")):
        assert said in (tmp_path / notebooks[name]).read_text()


def test_a_file_output_left_as_a_folder_fails_its_task_and_the_rest_go_on(tmp_path):
    write_notebook(tmp_path / "a.ipynb", 'outputs = ["out"]', "import os\nos.makedirs('out', exist_ok=True)")
    write_notebook(tmp_path / "b.ipynb", 'outputs = ["b.txt"]', "open('b.txt', 'w').write('b')")
    result = run_cli("run", cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "a: OutputNotAFile: declared output not a file: out is a folder" in result.stderr
    assert (tmp_path / "b.txt").read_text() == "b"


def test_one_print_past_the_cap_keeps_the_first_part(tmp_path):
    from nbflow.run.engine import OUTPUT_LIMIT_BYTES

    write_notebook(
        tmp_path / "loud.ipynb",
        'outputs = ["o.txt"]',
        f"open('o.txt', 'w').write('o')\nprint('x' * {OUTPUT_LIMIT_BYTES + 4096})",
    )
    run = nbflow.load(tmp_path).run()
    assert run.state == "succeeded"
    notebook = json.loads(Path(run.tasks["loud"].output_notebook).read_text())
    texts = [o.get("text", "") for o in notebook["cells"][-1]["outputs"]]
    kept = "".join(t if isinstance(t, str) else "".join(t) for t in texts)
    assert kept.count("x") == OUTPUT_LIMIT_BYTES and "output truncated" in kept


def test_a_parameter_value_past_the_bound_is_refused_before_anything_is_stored(tmp_path):
    from nbflow.params import MAX_VALUE_CHARS

    write_notebook(tmp_path / "a.ipynb", 'outputs = ["o.txt"]\nnote = ""', "open('o.txt', 'w').write(note[:10])")
    big = "y" * (MAX_VALUE_CHARS + 1)
    result = run_cli("run", "-p", "note", big, cwd=tmp_path)
    assert result.returncode == 2
    assert f"parameter `note`: its value is {MAX_VALUE_CHARS + 3:,} characters" in result.stderr  # as JSON: quoted
    assert "put the data in a file and pass its path" in result.stderr and len(result.stderr) < 2000
    assert not (tmp_path / "o.txt").exists()
    assert json.loads(run_cli("runs", "--json", cwd=tmp_path).stdout) == []


def test_a_schedule_interval_past_ten_years_is_refused_and_a_stored_one_does_not_break_the_listing(tmp_path):
    import sqlite3

    write_notebook(tmp_path / "a.ipynb", 'outputs = ["o.txt"]')
    result = run_cli("schedule", "add", "big", "--every", "9" * 400 + "s", cwd=tmp_path)
    assert result.returncode == 2 and "it must be at most 3650d (ten years)" in result.stderr
    assert run_cli("schedule", "add", "fine", "--every", "1h", cwd=tmp_path).returncode == 0
    # a row an older nbflow stored with an interval dates cannot hold
    with sqlite3.connect(tmp_path / ".nbflow" / "nbflow.db") as db:
        db.execute("UPDATE schedules SET every_s = 1e400 WHERE name = 'fine'")
    listing = run_cli("schedule", "list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "never (times unknown)" in listing.stdout
    as_json = json.loads(run_cli("schedule", "list", "--json", cwd=tmp_path).stdout)
    assert [(s["name"], s["next_fire"]) for s in as_json] == [("fine", None)]


def test_code_nested_past_the_parser_is_a_problem_of_its_notebook_or_fails_its_task_alone(tmp_path):
    write_notebook(tmp_path / "deep_params.ipynb", 'outputs = ["q.txt"]\nx = ' + "-" * 200_000 + "1")
    write_notebook(tmp_path / "deep_code.ipynb", 'outputs = ["o.txt"]', "x = " + "(" * 100_000 + "1" + ")" * 100_000)
    write_notebook(tmp_path / "fine.ipynb", 'outputs = ["p.txt"]', "open('p.txt', 'w').write('1')")
    graph = run_cli("graph", cwd=tmp_path)
    assert graph.returncode == 2 and "internal error" not in graph.stderr
    assert "deep_params.ipynb: parameters cell: the code is nested too deeply for Python's parser" in graph.stderr
    (tmp_path / "deep_params.ipynb").unlink()
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "deep_code: SyntaxError in cell 1" in result.stderr and (tmp_path / "p.txt").read_text() == "1"


def test_a_project_whose_folder_name_has_braces_runs(tmp_path):
    root = tmp_path / "p {x} {{ project }}"
    write_notebook(root / "a.ipynb", 'outputs = ["o.txt"]\nn = 1', "open('o.txt', 'w').write(str(n))")
    (root / "nbflow.toml").write_text("")
    result = run_cli("run", "-p", "n", "2", cwd=root)
    assert result.returncode == 0, result.stderr
    assert (root / "o.txt").read_text() == "2"

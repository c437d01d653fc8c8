"""Reports: a task declaring `report` gets its executed notebook written as HTML after each success, with code
hidden unless tagged `show-input`; the report is an output (edges, staleness); a failed run leaves the last good
one; `nbflow reports` lists the latest per instance and every version each run kept. Real kernels throughout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from conftest import run_cli, write_notebook

import nbflow
from nbflow.errors import PipelineError

pytestmark = pytest.mark.timeout(300)


def tag(path: Path, tags: dict[int, list[str]]) -> None:
    """Tag the notebook's cells by index (the parameters cell is 0)."""
    nb = nbformat.read(path, as_version=4)
    for index, names in tags.items():
        nb.cells[index].metadata["tags"] = names
    nbformat.write(nb, path)


def page(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def shown_code(soup: BeautifulSoup) -> list[str]:
    """The code the page shows (hidden inputs are not rendered at all)."""
    return [area.get_text().strip() for area in soup.select(".jp-InputArea-editor")]


def states(run) -> dict[str, str]:
    return {name: str(task.state) for name, task in run.tasks.items()}


def report_notebook(project: Path, *, fail: bool = False) -> Path:
    path = write_notebook(
        project / "nb" / "daily.ipynb",
        'day = "2026-11-24"\nfail = False\noutputs = ["../data/{day}.txt"]\nreport = "../reports/{day}_daily.html"',
        "assert not fail, 'the data did not come'\nopen(outputs[0], 'w').write(day)\nprint('rows counted: 42')",
        "total = 6 * 7\ntotal",
        "print('scratch work nobody should see')",
        "print('a noisy log line')",
        "from IPython.display import HTML, display\n"
        'display(HTML(\'<div id="chart"></div><script>document.getElementById("chart").textContent = 1</script>\'))',
        "import ipywidgets\nipywidgets.IntSlider(value=7, description='threshold')",
    )
    tag(path, {2: ["show-input"], 3: ["remove-cell"], 4: ["remove-output"]})
    return path


def test_a_report_shows_the_outputs_with_code_hidden_unless_tagged_show_input(project):
    report_notebook(project)
    result = run_cli("run", "-p", "fail", "False", cwd=project)
    assert result.returncode == 0, result.stderr
    report = project / "reports" / "2026-11-24_daily.html"
    soup = page(report)
    text = soup.get_text()
    assert "rows counted: 42" in text  # an output of a cell whose code is hidden
    assert shown_code(soup) == ["total = 6 * 7\ntotal"]  # only the `show-input` cell's code
    assert "42" in text
    assert "scratch work" not in report.read_text()  # `remove-cell`: neither code nor output
    assert "a noisy log line" not in report.read_text()  # `remove-output`
    # the parameters cell shows nothing, and the cell papermill injected with `fail = False` is left out
    assert "fail = " not in report.read_text()
    assert len(soup.select(".jp-Cell")) == 6
    # outputs that draw themselves are kept as they are: HTML with its script, and the widgets' saved state
    assert soup.find(id="chart") is not None and 'getElementById("chart")' in report.read_text()
    state = soup.find("script", type="application/vnd.jupyter.widget-state+json")
    assert state is not None and "threshold" in state.get_text()
    assert soup.title.get_text() == "daily"

    runs = json.loads(run_cli("runs", "--json", cwd=project).stdout)
    copy = project / ".nbflow" / "runs" / runs[0]["id"] / "daily.html"
    assert copy.read_bytes() == report.read_bytes()  # the run keeps its own copy


def test_a_report_is_titled_by_its_first_heading_and_a_grid_instance_by_its_values_too(project):
    """The title a browser's tab shows: the first heading a reader sees (one a cell displays counts; one in a
    removed cell does not), the instance's values after it; the notebook's own `title` wins over both."""
    regional = write_notebook(
        project / "regional.ipynb",
        'region = "all"\ngrid = {"region": ["north", "south"]}\nreport = "reports/{region}.html"',
        "from IPython.display import HTML, display\ndisplay(HTML('<h1>Sales <em>by</em> region</h1>'))",
        markdown="# Scratch notes",
    )
    tag(regional, {0: ["remove-cell"]})
    write_notebook(
        project / "named.ipynb",
        'report = "reports/named.html"',
        "print(1)",
        markdown="# A heading",
        metadata={"title": "Stock on hand"},
    )
    write_notebook(project / "md.ipynb", 'report = "reports/md.html"', "print(1)", markdown="Intro\n\n# Stock *today*")
    write_notebook(project / "plain.ipynb", 'report = "reports/plain.html"', "print(1)")
    run = nbflow.load(project).run()
    assert run.state == "succeeded", states(run)
    titles = {p.stem: page(p).title.get_text() for p in (project / "reports").glob("*.html")}
    assert titles == {
        "north": "Sales by region (region=north)",
        "south": "Sales by region (region=south)",
        "named": "Stock on hand",
        "md": "Stock today",  # a Markdown cell's heading, as text
        "plain": "plain",  # nothing better: its name
    }


def test_a_grid_task_writes_one_report_per_instance_and_reports_lists_the_latest_of_each(project):
    write_notebook(
        project / "regional.ipynb",
        'region = "all"\ngrid = {"region": ["north", "south"]}\nreport = "reports/{region}.html"',
        "print('sales of', region, 'published at', report)",
    )
    first = nbflow.load(project).run()
    assert first.state == "succeeded", states(first)
    for region in ("north", "south"):  # the notebook sees where its report goes, filled and relative to it
        assert (
            f"sales of {region} published at reports/{region}.html"
            in page(project / "reports" / f"{region}.html").get_text()
        )

    second = nbflow.load(project).run(targets=["regional[region=south]"], force=True)
    assert second.state == "succeeded", states(second)

    result = run_cli("reports", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    latest = json.loads(result.stdout)
    assert [(r["name"], r["run_id"], r["grid"]) for r in latest] == [
        ("regional[region=north]", first.id, {"region": "north"}),
        ("regional[region=south]", second.id, {"region": "south"}),
    ]
    north = latest[0]
    assert north["task"] == "regional" and north["params"] == {"region": "north"}
    assert north["path"] == "reports/north.html" and north["exists"] and north["latest"]
    assert north["run_copy"] == f".nbflow/runs/{first.id}/regional[region=north].html" and north["run_copy_exists"]

    every = json.loads(run_cli("reports", "--all", "-t", "regional[region=south]", "--json", cwd=project).stdout)
    assert [(r["run_id"], r["latest"]) for r in every] == [(second.id, True), (first.id, False)]
    assert all((project / r["run_copy"]).is_file() for r in every)  # the earlier version stays readable

    text = run_cli("reports", cwd=project).stdout.splitlines()
    assert [line.split()[:2] for line in text] == [
        ["regional[region=north]", first.id],
        ["regional[region=south]", second.id],
    ]
    assert text[0].split()[4] == "reports/north.html"
    unknown = run_cli("reports", "-t", "regionl", cwd=project)
    assert unknown.returncode == 2 and "-t regionl: no run has written a report of it" in unknown.stderr
    assert "tasks with reports: regional" in unknown.stderr


def test_a_failed_run_leaves_the_last_good_report_untouched(project):
    report_notebook(project)
    good = nbflow.load(project).run()
    assert good.state == "succeeded", states(good)
    report = project / "reports" / "2026-11-24_daily.html"
    before = (report.read_bytes(), report.stat().st_mtime_ns)

    failed = nbflow.load(project, params={"fail": True}).run()
    assert failed.state == "failed" and failed.tasks["daily"].error.ename == "AssertionError"
    assert (report.read_bytes(), report.stat().st_mtime_ns) == before
    assert not (project / ".nbflow" / "runs" / failed.id / "daily.html").exists()
    assert [r["run_id"] for r in json.loads(run_cli("reports", "--json", "--all", cwd=project).stdout)] == [good.id]


def test_a_task_reading_a_report_runs_after_it_and_a_deleted_report_makes_its_task_stale(project):
    write_notebook(
        project / "write.ipynb",
        'report = "out/summary.html"',
        "print('the summary of the day')",
    )
    write_notebook(
        project / "mail.ipynb",
        'inputs = ["out/summary.html"]\noutputs = ["out/sent.txt"]',
        "text = open(inputs[0]).read()\nopen(outputs[0], 'w').write(str('the summary of the day' in text))",
    )
    pipe = nbflow.load(project)
    assert list(pipe.graph.edges) == [("write", "mail")]
    run = pipe.run()
    assert run.state == "succeeded", states(run)
    assert (project / "out" / "sent.txt").read_text() == "True"  # it read the report, written before it started
    assert run.tasks["mail"].started_at > run.tasks["write"].finished_at

    (project / "out" / "summary.html").unlink()
    status = {t["name"]: t for t in json.loads(run_cli("status", "--json", cwd=project).stdout)["tasks"]}
    assert status["write"]["status"] == "stale"
    assert status["write"]["reasons"] == ["output missing: out/summary.html"]
    again = nbflow.load(project).run()
    # written again, the same page as before: what reads it is up to date
    assert states(again) == {"write": "succeeded", "mail": "skipped"}
    assert (project / "out" / "summary.html").is_file()
    assert states(nbflow.load(project).run()) == {"write": "skipped", "mail": "skipped"}


def test_a_report_that_cannot_be_written_fails_its_task_saying_why(project):
    (project / "blocked").write_text("a file where the report's folder should be")
    write_notebook(project / "daily.ipynb", 'report = "blocked/daily.html"', "print('done')")
    run = nbflow.load(project).run()
    assert run.state == "failed"
    error = run.tasks["daily"].error
    assert error.ename == "ReportNotWritten"
    assert error.evalue.startswith("the report blocked/daily.html could not be written:")
    assert (project / "blocked").read_text().startswith("a file")
    assert json.loads(run_cli("reports", "--json", cwd=project).stdout) == []


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            'region = "x"\ngrid = {"region": ["a", "b"]}\nreport = "r.html"',
            "`grid`: the report 'r.html' does not use {region}, so every instance would write the same file",
        ),
        ('outputs = ["o.txt"]\nreport = "reports/"', "line 2: `report` is 'reports/', a folder; it must name one"),
        (
            'outputs = ["o.txt"]\nreport = "r.txt"',
            "`report` is 'r.txt'; nbflow writes reports as HTML or PDF: end the path",
        ),
        ('day = "d"\nreport = f"{day}.html"', "line 2: `report` must be a Python literal (a string)"),
    ],
)
def test_a_bad_report_declaration_is_reported_naming_the_notebook_and_line(project, parameters, message):
    write_notebook(project / "daily.ipynb", parameters)
    with pytest.raises(PipelineError) as caught:
        nbflow.load(project)
    assert "daily.ipynb: parameters cell" in str(caught.value) and message in str(caught.value)


def test_a_report_has_one_writer(project):
    write_notebook(project / "a.ipynb", 'report = "r.html"')
    write_notebook(project / "b.ipynb", 'outputs = ["r.html"]')
    with pytest.raises(PipelineError) as caught:
        nbflow.load(project)
    assert "r.html is declared as an output by a (a.ipynb) and b (b.ipynb)" in str(caught.value)


def test_a_notebook_using_report_as_a_variable_of_its_own_is_left_alone(project):
    write_notebook(project / "weekly.ipynb", 'report = "weekly"\nrows = 10')  # a papermill parameter, not a path
    write_notebook(project / "scratch.ipynb", None, "report = make_report()")  # no parameters cell at all
    write_notebook(project / "task.ipynb", 'outputs = ["o.txt"]')
    assert list(nbflow.load(project).tasks) == ["task"]


def test_the_panels_outputs_tab_shows_the_report_each_run_wrote(project):
    import html

    from nbflow.widgets.panel import Panel

    write_notebook(
        project / "regional.ipynb",
        'region = "all"\nstamp = "one"\ngrid = {"region": ["north", "south"]}\nreport = "reports/{region}.html"',
        "print('sales of', region, 'edition', stamp)",
    )
    write_notebook(project / "plain.ipynb", 'outputs = ["plain.txt"]', "open('plain.txt', 'w').write('p')")
    first = nbflow.load(project).run()
    second = nbflow.load(project).run(targets=["regional[region=south]"], params={"stamp": "two"})
    assert first.state == second.state == "succeeded", (states(first), states(second))

    panel = Panel(project, follow=False)
    try:
        panel.show(first.id)
        tab = panel.outputs
        assert list(tab.task.options) == ["plain", "regional[region=north]", "regional[region=south]"]
        tab.task.value = "plain"
        assert tab.report_button.disabled  # it declares no report
        tab.task.value = "regional[region=south]"
        assert not tab.report_button.disabled
        tab.report_button.click()
        shown = html.unescape(tab.view.value)
        # the first run's own copy: the declared path now holds the second run's edition
        assert "sales of south edition one" in shown and "edition two" not in shown
        assert f"report of run {first.id}" in shown and "<iframe" in shown and 'sandbox="allow-scripts' in shown
        assert panel.tabs.selected_index == 3

        panel.show(second.id)
        assert list(tab.task.options) == ["regional[region=south]"]
        tab.show_report("regional[region=south]")
        assert "sales of south edition two" in html.unescape(tab.view.value)
        tab.show_report("regional[region=north]")  # not in the second run
        assert "No report to show" in tab.view.value

        panel.show("status")  # each instance's last run: north's is the first
        tab.show_report("regional[region=north]")
        assert "sales of north edition one" in html.unescape(tab.view.value)

        (project / ".nbflow" / "runs" / first.id / "regional[region=north].html").unlink()
        panel.show(first.id)
        tab.show_report("regional[region=north]")
        assert "is gone" in tab.view.value
    finally:
        panel.close()


def test_a_pdf_report_is_printed_by_chromium_and_the_run_keeps_the_html_it_printed(project):
    from nbflow.preflight import chromium

    if chromium() is None and not os.environ.get("CI"):  # CI installs Chromium: there, a missing one fails
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    write_notebook(
        project / "monthly.ipynb",
        'month = "2026-11"\nreport = "reports/{month}.pdf"',
        "print('monthly revenue for', month)",
    )
    run = nbflow.load(project).run()
    assert run.state == "succeeded", states(run)
    pdf = project / "reports" / "2026-11.pdf"
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    printed = document[0].get_textpage().get_text_range()
    assert "monthly revenue for 2026-11" in printed and "print(" not in printed  # the outputs, the code hidden
    assert len(document) == 1
    document.close()
    assert not list(pdf.parent.glob(".*.tmp"))  # printed beside its place, then renamed into it
    copy = project / ".nbflow" / "runs" / run.id / "monthly.html"
    assert "monthly revenue for 2026-11" in page(copy).get_text()  # what the views show: the page it printed
    listed = json.loads(run_cli("reports", "--json", cwd=project).stdout)
    assert [(r["path"], r["run_copy"]) for r in listed] == [
        ("reports/2026-11.pdf", f".nbflow/runs/{run.id}/monthly.html")
    ]


def test_a_pdf_report_without_a_browser_stops_the_run_before_it_starts(project):
    write_notebook(project / "monthly.ipynb", 'report = "reports/monthly.pdf"', "print('x')")
    write_notebook(project / "other.ipynb", 'outputs = ["o.txt"]', "open('o.txt', 'w').write('o')")
    result = run_cli("run", cwd=project, env={"NBFLOW_CHROMIUM": str(project / "no-such-browser")})
    assert result.returncode == 2, result.stderr
    assert "monthly.ipynb: `report` names a PDF, which nbflow prints with Chromium" in result.stderr
    assert "NBFLOW_CHROMIUM=" in result.stderr and "no-such-browser is not an executable file" in result.stderr
    assert not (project / "o.txt").exists()  # nothing ran
    # a run of the other task alone needs no browser
    alone = run_cli("run", "-t", "other", cwd=project, env={"NBFLOW_CHROMIUM": str(project / "no-such-browser")})
    assert alone.returncode == 0, alone.stderr

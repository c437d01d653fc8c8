"""The panel shows how far each running notebook has got: the cell running (`cell 4/5`), its first line and the
last line printed, in the tasks table and on the graph's node, as it refreshes; on a real run."""

from __future__ import annotations

import html
import re

from conftest import write_notebook
from test_panel import wait_for

import nbflow
from nbflow.run.background import start_run
from nbflow.widgets.panel import Panel

WAITING = "while not os.path.exists('go'):"


def shown_text(value: str) -> str:
    """What a reader sees of some HTML: its text, tags dropped, entities read, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", value)).split())


def test_the_tasks_table_and_the_graph_say_which_cell_runs_and_what_it_printed(project):
    write_notebook(
        project / "waits.ipynb",
        'outputs = ["done.txt"]',
        "import os, time\nprint('warming up')\nprint('ready: waiting for go')",
        f"{WAITING}\n    time.sleep(0.05)",
        "open('done.txt', 'w').write('done')",
    )
    panel = Panel(project, poll_interval=0.2)  # opened before the run: the live view follows it
    handle = None
    try:
        handle = start_run(nbflow.load(project), trigger="api")
        wait_for(lambda: "cell 4/5" in shown_text(panel.table.value), timeout=120, what="the table to say cell 4/5")
        text = shown_text(panel.table.value)
        assert "progress" in text  # the column, while an instance runs
        assert f"cell 4/5 {WAITING}" in text  # the running cell and its first line
        assert "ready: waiting for go" in text and "warming up" not in text  # the last line printed, only
        assert "waits" in text and "running" in text
        wait_for(lambda: "cell 4/5" in panel.svg, what="the graph's node to say cell 4/5")
        assert panel.states["waits"] == "running"
        (project / "go").write_text("")
        assert handle.wait(timeout=120).state == "succeeded"
        wait_for(lambda: panel.states.get("waits") == "succeeded", what="the panel to show the run ended")
        text = shown_text(panel.table.value)
        assert "succeeded" in text and "cell 4/5" not in text and "progress" not in text
        assert "cell 4/5" not in panel.svg
        assert (project / "done.txt").read_text() == "done"
    finally:
        if handle is not None and not handle.done:
            (project / "go").write_text("")
            handle.cancel()
            handle.wait(timeout=60)
        panel.close()

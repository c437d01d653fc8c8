"""The JupyterLab extension in a real browser: `jupyter lab` on 127.0.0.1 with a test config, headless Chromium
(Debian's, driven by Playwright), the nbflow side panel on a small pipeline, a run from the panel with real kernels.

Screenshots go to tests/artifacts/. Skipped when no Chromium is installed (CI installs Debian's `chromium`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import write_notebook

from nbflow.preflight import chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = chromium()  # NBFLOW_CHROMIUM, else the usual names on PATH: the one that prints PDF reports
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 180_000

pytestmark = [
    pytest.mark.timeout(900),
    # CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CI"), reason="needs Chromium (Debian: apt-get install chromium)"
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """extract -> transform -> report, plus a side task reading extract's output: trivial notebooks."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "nbflow.toml").write_text("[params]\nscale = 2\n")
    write_notebook(
        root / "extract.ipynb",
        'outputs = ["data/raw.txt"]\nscale = 1',
        "import os\nos.makedirs('data', exist_ok=True)\nopen('data/raw.txt', 'w').write(str(21 * scale))",
    )
    write_notebook(
        root / "transform.ipynb",
        'inputs = ["data/raw.txt"]\noutputs = ["data/clean.txt"]',
        "value = int(open('data/raw.txt').read())\nopen('data/clean.txt', 'w').write(str(value))",
        "print('clean value:', value)",
    )
    write_notebook(
        root / "reports" / "report.ipynb",
        'inputs = ["../data/clean.txt"]\noutputs = ["report.md"]',
        "text = open('../data/clean.txt').read()\nopen('report.md', 'w').write('# total ' + text)",
        "from IPython.display import Markdown\nMarkdown('# total ' + text)",
        markdown="# The report\nIt reads the clean value.",
    )
    write_notebook(
        root / "audit.ipynb", 'inputs = ["data/raw.txt"]\noutputs = ["audit.txt"]', "open('audit.txt', 'w').write('ok')"
    )
    return root


@pytest.fixture
def server_args() -> list[str]:
    """Extra `jupyter lab` options (a test parametrizes this name to change them)."""
    return []


@pytest.fixture
def lab_server(tmp_path: Path, pipeline_root: Path, server_args: list[str]):
    """`jupyter lab` as a user starts it, with its own config, settings and runtime folders; yields (url, token)."""
    port = free_port()
    token = "nbflow-test-" + os.urandom(8).hex()
    config = tmp_path / "jupyter-config"
    settings = tmp_path / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    # no "news" or update notifications over the panel
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    config.mkdir()
    (config / "jupyter_server_config.py").write_text(
        "c.ServerApp.open_browser = False\n"
        "c.ServerApp.port_retries = 0\n"
        "c.ServerApp.allow_root = True\n"  # CI runs as root
        f"c.LabApp.user_settings_dir = {str(settings)!r}\n"
        f"c.LabApp.workspaces_dir = {str(tmp_path / 'workspaces')!r}\n"
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    log = open(tmp_path / "jupyter-lab.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={pipeline_root}",
            *server_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "jupyter-lab.log").read_text()
            try:
                request = urllib.request.Request(
                    f"{url}/nbflow/api/pipeline", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "jupyter-lab.log").read_text()
            time.sleep(0.5)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "jupyter-lab.log", ARTIFACTS / "jupyter-lab.log")


@pytest.fixture
def page(lab_server):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "no Chromium found: apt-get install chromium (or set NBFLOW_CHROMIUM to its path)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.console_messages = []  # type: ignore[attr-defined]
        page.on("console", lambda message: page.console_messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: page.console_messages.append(f"pageerror: {error}"))
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "browser-console.log").write_text("\n".join(page.console_messages))
            context.close()
            browser.close()


def open_panel(page, lab_server) -> None:
    url, token = lab_server
    page.goto(f"{url}/lab?token={token}")
    tab = page.locator('.jp-SideBar [data-id="nbflow-panel"]')
    tab.wait_for()
    tab.click()
    # the graph, its tasks listed where it is too wide for the panel, or counted where there are too many to list
    page.locator(
        "#nbflow-panel .nbflow-node, #nbflow-panel .nbflow-task-row, #nbflow-panel .nbflow-graph-count"
    ).first.wait_for()


def node_states(page) -> dict[str, str]:
    """Each task's state in the panel, as its node (or, where the graph is too wide for the panel, its row) shows it."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
                                      '#nbflow-panel .nbflow-node, #nbflow-panel .nbflow-task-row')]
                                  .map(n => [n.dataset.task, n.dataset.state]))""")


def wait_for_states(page, expected: dict[str, str]) -> None:
    """Wait until these tasks show these states (the run list and the run's tasks arrive as separate updates)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            """expected => [...document.querySelectorAll('#nbflow-panel .nbflow-node, #nbflow-panel .nbflow-task-row')]
                           .filter(n => n.dataset.task in expected)
                           .every(n => n.dataset.state === expected[n.dataset.task])""",
            arg=expected,
            timeout=30_000,
        )
    except PlaywrightTimeout:
        pass  # said below, with what the panel shows
    states = node_states(page)
    assert {task: states.get(task) for task in expected} == expected


def test_the_side_panel_runs_the_pipeline_and_shows_every_node_succeeded(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_panel(page, lab_server)
    assert node_states(page) == {
        "extract": "never_run",
        "audit": "never_run",
        "transform": "never_run",
        "report": "never_run",
    }
    assert page.locator("#nbflow-panel .nbflow-edge").count() == 3

    # a bad parameter value is refused in the panel, not in the console
    page.locator("#nbflow-panel details.nbflow-params summary").click()
    scale = page.locator('#nbflow-panel input[data-param="scale"]')
    scale.fill("two")
    page.locator("#nbflow-panel .nbflow-run-all").click()
    error = page.locator("#nbflow-panel .nbflow-error")
    error.wait_for(state="visible")
    assert "scale" in error.inner_text() and "not a number" in error.inner_text()
    scale.fill("5")

    page.locator("#nbflow-panel .nbflow-run-all").click()
    page.wait_for_function(
        """() => { const nodes = [...document.querySelectorAll('#nbflow-panel .nbflow-node')];
                   return nodes.length === 4 && nodes.every(n => n.dataset.state === 'succeeded'); }""",
        timeout=TIMEOUT_MS,
    )
    assert error.is_hidden()
    page.screenshot(path=str(ARTIFACTS / "lab-panel-succeeded.png"))
    assert (pipeline_root / "reports" / "report.md").read_text() == "# total 105"

    # the run shows in the history and in detail, with the parameter it was given
    run_head = page.locator("#nbflow-panel .nbflow-run-head").inner_text()
    assert "succeeded" in run_head and "lab" in run_head
    assert "scale=5" in page.locator("#nbflow-panel .nbflow-run-params").inner_text()
    assert page.locator("#nbflow-panel .nbflow-history-row").count() == 1

    # a finished task opens its executed notebook, read-only, with its outputs
    page.locator('#nbflow-panel .nbflow-node[data-task="transform"] .nbflow-node-output').click()
    view = page.locator(".nbflow-Executed")
    view.wait_for()
    view.get_by_text("clean value: 105").wait_for()
    assert "read-only" in page.locator(".nbflow-Executed-header").inner_text()
    assert view.locator("textarea, [contenteditable='true']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "lab-executed-notebook.png"))

    # clicking a node opens its notebook
    page.locator('#nbflow-panel .nbflow-node[data-task="report"] .nbflow-node-name').click()
    page.locator(".jp-MainAreaWidget .jp-NotebookPanel-notebook, .jp-NotebookPanel").first.wait_for()
    page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[title*="report.ipynb"]').first.wait_for()

    # run one task with its upstream, forced: only extract and transform run
    page.locator("#nbflow-panel .nbflow-force").check()
    page.locator('#nbflow-panel .nbflow-node[data-task="transform"] .nbflow-node-run').click()
    page.wait_for_function(
        """() => document.querySelectorAll('#nbflow-panel .nbflow-history-row').length === 2 &&
                 document.querySelector('#nbflow-panel .nbflow-history-row .nbflow-badge').dataset.state === 'succeeded'
                 && document.querySelector('#nbflow-panel .nbflow-history-row').classList.contains('nbflow-selected')""",
        timeout=TIMEOUT_MS,
    )
    rows = page.locator("#nbflow-panel .nbflow-tasks tr[data-task]")
    assert sorted(rows.nth(i).get_attribute("data-task") for i in range(rows.count())) == ["extract", "transform"]
    page.screenshot(path=str(ARTIFACTS / "lab-panel-second-run.png"))

    # the file browser's context menu runs a notebook's task with its upstream (up to date now: skipped)
    page.locator("#nbflow-panel .nbflow-force").uncheck()
    page.locator('.jp-SideBar [data-id="filebrowser"]').click()
    page.locator('.jp-DirListing-item[title*="audit.ipynb"]').click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="nbflow: Run This Notebook's Task with Its Upstream").click()
    page.wait_for_function(
        """() => document.querySelectorAll('#nbflow-panel .nbflow-history-row').length === 3 &&
                 document.querySelector('#nbflow-panel .nbflow-history-row .nbflow-badge').dataset.state === 'succeeded'
                 && document.querySelector('#nbflow-panel .nbflow-history-row').classList.contains('nbflow-selected')""",
        timeout=TIMEOUT_MS,
    )
    # extract and audit: the same values as the last runs; the others were not in this run: they show their
    # status, judged with the default parameters (scale = 2)
    wait_for_states(page, {"extract": "skipped", "audit": "skipped", "transform": "stale", "report": "stale"})
    page.screenshot(path=str(ARTIFACTS / "lab-panel-context-menu-run.png"))

    nbflow_errors = [m for m in page.console_messages if m.startswith(("error", "pageerror")) and "nbflow" in m]
    assert not nbflow_errors, nbflow_errors


def test_the_panel_shows_the_problems_of_an_invalid_pipeline(page, lab_server, pipeline_root):
    write_notebook(pipeline_root / "broken.ipynb", "inputs = make_paths()")
    url, token = lab_server
    page.goto(f"{url}/lab?token={token}")
    tab = page.locator('.jp-SideBar [data-id="nbflow-panel"]')
    tab.wait_for()
    tab.click()
    problems = page.locator("#nbflow-panel .nbflow-problems")
    problems.get_by_text("broken.ipynb: parameters cell, line 1").wait_for()
    assert page.locator("#nbflow-panel .nbflow-run-all").is_disabled()
    page.screenshot(path=str(ARTIFACTS / "lab-panel-problems.png"))


def test_the_panel_follows_a_run_started_elsewhere_and_cancels_it(page, lab_server, pipeline_root):
    write_notebook(pipeline_root / "slow.ipynb", 'outputs = ["slow.txt"]', "import time\ntime.sleep(120)")
    open_panel(page, lab_server)
    process = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(pipeline_root), "-t", "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page.wait_for_function(
            """() => document.querySelector('#nbflow-panel .nbflow-node[data-task="slow"]')?.dataset.state === 'running'""",
            timeout=TIMEOUT_MS,
        )
        assert "cli" in page.locator("#nbflow-panel .nbflow-history-row").first.inner_text()
        cancel = page.locator("#nbflow-panel .nbflow-cancel")
        assert cancel.is_enabled()
        page.screenshot(path=str(ARTIFACTS / "lab-panel-cli-run.png"))
        cancel.click()
        page.wait_for_function(
            """() => document.querySelector('#nbflow-panel .nbflow-node[data-task="slow"]')?.dataset.state === 'cancelled'""",
            timeout=TIMEOUT_MS,
        )
        assert process.wait(timeout=60) == 130
        page.wait_for_function(
            "() => document.querySelector('#nbflow-panel .nbflow-cancel').disabled", timeout=TIMEOUT_MS
        )
        assert (
            page.locator("#nbflow-panel .nbflow-history-row .nbflow-badge").first.get_attribute("data-state")
            == "cancelled"
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.mark.parametrize("server_args", [["--NbflowApp.scheduler=True"]])
def test_schedules_are_added_paused_and_removed_from_the_panel_and_fire_in_the_server(page, lab_server, pipeline_root):
    from datetime import datetime

    from nbflow.schedule import get_schedule

    open_panel(page, lab_server)
    section = page.locator("#nbflow-panel .nbflow-schedules-section")
    status = section.locator(".nbflow-scheduler-status")
    section.locator(".nbflow-scheduler-status[data-running='true']").wait_for()
    assert "runs in this Jupyter server" in status.inner_text()
    assert "No schedules." in section.inner_text()

    # a mistake is said in the section
    section.locator(".nbflow-schedule-add summary").click()
    section.locator(".nbflow-schedule-name-input").fill("hourly")
    section.locator(".nbflow-schedule-timing-input").fill("10x")
    section.locator(".nbflow-schedule-add-button").click()
    error = section.locator(".nbflow-schedules-error")
    error.wait_for(state="visible")
    assert "10x" in error.inner_text()

    section.locator(".nbflow-schedule-timing-input").fill("1h")
    section.locator(".nbflow-schedule-targets-input").select_option(["report"])
    section.locator(".nbflow-schedule-params-input").fill("scale=3")
    section.locator(".nbflow-schedule-add-button").click()
    row = section.locator('.nbflow-schedule[data-schedule="hourly"]')
    row.wait_for()
    assert error.is_hidden()
    text = row.inner_text()
    assert "every 1h" in text and "targets: report" in text and "params: scale=3" in text
    assert "not fired yet" in text
    next_fire = get_schedule(pipeline_root, "hourly")["next_fire"]
    local = datetime.fromisoformat(next_fire).astimezone()  # the browser runs on this machine, in its zone
    shown = row.locator(".nbflow-schedule-next").inner_text()
    assert local.strftime("%H:%M") in shown and "(in " in shown, (shown, next_fire)
    page.screenshot(path=str(ARTIFACTS / "lab-schedules-added.png"))

    row.locator(".nbflow-schedule-pause").click()
    section.locator('.nbflow-schedule[data-schedule="hourly"][data-paused="true"]').wait_for()
    assert "paused" in row.locator(".nbflow-schedule-next").inner_text()
    assert get_schedule(pipeline_root, "hourly")["paused"] is True
    row.locator(".nbflow-schedule-resume").wait_for()
    page.screenshot(path=str(ARTIFACTS / "lab-schedules-paused.png"))

    # a quick schedule fires in the server: its run shows in the run history
    section.locator(".nbflow-schedule-name-input").fill("quick")
    section.locator(".nbflow-schedule-timing-input").fill("2s")
    section.locator(".nbflow-schedule-targets-input").select_option(["extract"])
    section.locator(".nbflow-schedule-add-button").click()
    page.locator("#nbflow-panel .nbflow-history-row", has_text="schedule:quick").first.wait_for(timeout=TIMEOUT_MS)
    section.locator('.nbflow-schedule[data-schedule="quick"] .nbflow-schedule-pause').click()
    section.locator('.nbflow-schedule[data-schedule="quick"][data-paused="true"]').wait_for()
    page.locator('#nbflow-panel .nbflow-schedule[data-schedule="quick"]', has_text="last fired").wait_for(
        timeout=TIMEOUT_MS
    )
    page.screenshot(path=str(ARTIFACTS / "lab-schedules-fired.png"))

    for name in ("hourly", "quick"):
        section.locator(f'.nbflow-schedule[data-schedule="{name}"] .nbflow-schedule-remove').click()
        page.locator(".jp-Dialog .jp-mod-accept").click()
        section.locator(f'.nbflow-schedule[data-schedule="{name}"]').wait_for(state="detached")
    section.get_by_text("No schedules.").wait_for()
    assert error.is_hidden()

    nbflow_errors = [m for m in page.console_messages if m.startswith(("error", "pageerror")) and "nbflow" in m]
    assert not nbflow_errors, nbflow_errors


GRAPH_GEOMETRY = """() => {
    const svg = document.querySelector('#nbflow-panel svg.nbflow-graph');
    const boxes = [...svg.querySelectorAll('.nbflow-node')].map(node => {
        const rect = node.querySelector('.nbflow-node-box');
        const [x, y] = node.getAttribute('transform').match(/-?[\\d.]+/g).map(Number);
        return { task: node.dataset.task, x, y, w: rect.width.baseVal.value, h: rect.height.baseVal.value,
                 name: node.querySelector('.nbflow-node-name').getComputedTextLength(),
                 nameX: node.querySelector('.nbflow-node-name').x.baseVal[0].value };
    });
    const lines = [...svg.querySelectorAll('.nbflow-edge')].map(path => {
        const length = path.getTotalLength();
        const points = [];
        for (let i = 0; i <= 40; i++) {
            const p = path.getPointAtLength(length * i / 40);
            points.push([p.x, p.y]);
        }
        return { title: path.querySelector('title').textContent, points };
    });
    return { direction: svg.dataset.direction, width: svg.width.baseVal.value,
             shown: svg.parentElement.clientWidth, boxes, lines };
}"""


def assert_drawn_readably(geometry) -> None:
    """No two boxes overlap, each whole name fits before its box's run button, no line runs behind a box."""
    boxes = geometry["boxes"]
    for i, a in enumerate(boxes):
        assert a["nameX"] + a["name"] <= a["w"] - 22, f"the name of {a['task']} runs into its run button"
        for b in boxes[i + 1 :]:
            apart = a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
            assert apart or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"], (a["task"], b["task"])
    for line in geometry["lines"]:
        for x, y in line["points"]:
            for box in boxes:
                inside = box["x"] + 1 < x < box["x"] + box["w"] - 1 and box["y"] + 1 < y < box["y"] + box["h"] - 1
                assert not inside, f"the edge {line['title']} runs behind the box of {box['task']}"


def test_the_graph_fits_the_side_panel_and_goes_left_to_right_when_it_is_wide(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    write_notebook(
        pipeline_root / "summarise_totals.ipynb",
        'inputs = ["data/clean.txt"]\noutputs = ["long.txt"]',
    )
    open_panel(page, lab_server)
    # the default width: too narrow for the three layers side by side, so they go top to bottom, to fit
    narrow = page.evaluate(GRAPH_GEOMETRY)
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-graph-narrow.png"))
    assert narrow["direction"] == "TB" and narrow["width"] <= narrow["shown"]
    assert {b["task"] for b in narrow["boxes"]} == {
        "extract",
        "transform",
        "report",
        "audit",
        "summarise_totals",
    }
    assert_drawn_readably(narrow)

    # widened by its handle, the panel draws the graph left to right, as the other nbflow drawings go
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 520, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#nbflow-panel svg.nbflow-graph')?.dataset.direction === 'LR'")
    wide = page.evaluate(GRAPH_GEOMETRY)
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-graph-wide.png"))
    assert wide["width"] <= wide["shown"]
    assert_drawn_readably(wide)
    for line in wide["lines"]:  # every edge goes rightwards, from its source to its target
        xs = [x for x, _ in line["points"]]
        assert all(later >= earlier - 0.5 for earlier, later in zip(xs, xs[1:])), line["title"]

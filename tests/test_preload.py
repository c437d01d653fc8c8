"""Imports preloaded in the fork server: a kernel forked from a server that imported pandas, NumPy and matplotlib
must behave as a fresh one (results, random streams, inline figures, its environment), each run says what it
preloaded with --verbose, and what cannot be preloaded (not installed, starts a thread as it is imported) is
imported by the kernel itself. Real kernels throughout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

from nbflow.run.preload import imports_of

pytestmark = pytest.mark.timeout(300)


def test_the_imports_of_a_notebook_are_found_statically_as_the_modules_they_name():
    cells = [
        "import pandas as pd, numpy\nfrom matplotlib import pyplot as plt",
        "%matplotlib inline\nimport scipy.stats\n!ls",  # IPython syntax: its import lines still count
        "def f():\n    import sklearn.linear_model\n    from . import local\n    from __future__ import annotations",
    ]
    # `from matplotlib import pyplot`: the name may not be a module, so only the package it comes from
    assert imports_of(cells) == {"pandas", "numpy", "matplotlib", "scipy.stats", "sklearn.linear_model", "__future__"}


def stdout_of(notebook: Path) -> list[str]:
    """What each cell that printed printed, as a reader sees it (a kernel may send one print in pieces)."""
    cells = json.loads(notebook.read_text())["cells"]
    printed = ["".join("".join(o["text"]) for o in c.get("outputs", []) if o.get("name") == "stdout") for c in cells]
    return [text.strip() for text in printed if text.strip()]


def has_png(notebook: Path) -> bool:
    cells = json.loads(notebook.read_text())["cells"]
    return any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))


@pytest.fixture
def science(project: Path) -> Path:
    (project / "nbflow.toml").write_text('[secrets]\ntoken = "env:NBFLOW_TEST_PRELOAD_TOKEN"\n')
    for name in ("first", "second"):
        write_notebook(
            project / f"{name}.ipynb",
            f'outputs = ["{name}.txt"]\ntoken = ""',
            "import sys\nprint('preloaded', 'pandas' in sys.modules)",
            "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt",
            "print('sum', pd.DataFrame({'x': np.arange(10)}).x.sum())",
            "print('unseeded', np.random.rand())",  # the legacy global stream, as the kernel found it
            "np.random.seed(7)\nprint('seeded', np.random.rand())",
            "import os\nprint('env', os.environ.get('NBFLOW_TEST_PRELOAD_TOKEN') == 'per-task-value')",
            "plt.plot([1, 3, 2])\nplt.show()",
            "import gc\nprint('tracked', len(gc.get_objects()))",  # the objects the kernel's collector walks
            f"open('{name}.txt', 'w').write('done')",
        )
    return project


def test_a_kernel_forked_from_a_preloaded_server_behaves_as_a_fresh_one(science):
    env = {"NBFLOW_TEST_PRELOAD_TOKEN": "per-task-value"}
    runs = {}
    for mode, flags in (("preload", ["--verbose"]), ("fresh", ["--no-preload"])):
        result = run_cli("run", "--force", "-j", "2", *flags, cwd=science, env=env)
        assert result.returncode == 0, result.stderr
        if mode == "preload":
            assert "nbflow: preloaded in the fork server: matplotlib.pyplot, pandas" in result.stderr
        run_id = json.loads(run_cli("runs", "--json", cwd=science).stdout)[0]["id"]
        runs[mode] = {n: science / ".nbflow" / "runs" / run_id / f"{n}.ipynb" for n in ("first", "second")}
    for mode, preloaded in (("preload", "True"), ("fresh", "False")):
        for notebook in runs[mode].values():
            out = stdout_of(notebook)
            assert out[0] == f"preloaded {preloaded}"  # pandas was there before the notebook imported it, or not
            assert out[1] == "sum 45" and out[4] == "env True"  # the secret: set for this task
            assert has_png(notebook)  # the inline backend, with matplotlib imported before the kernel chose one
    # the preloaded modules' objects are the server's, frozen: the kernel's collector neither walks nor writes them
    # (which would copy their memory into every kernel)
    tracked = {mode: max(int(stdout_of(nb)[5].split()[1]) for nb in runs[mode].values()) for mode in runs}
    assert tracked["preload"] < tracked["fresh"] / 2, tracked
    seeded = {stdout_of(nb)[3] for mode in runs for nb in runs[mode].values()}
    assert len(seeded) == 1  # a seed gives the same stream, forked or not
    unseeded = [stdout_of(nb)[2] for nb in runs["preload"].values()]
    assert unseeded[0] != unseeded[1]  # each forked kernel draws its own numbers


def test_what_cannot_be_preloaded_is_said_and_imported_by_the_kernel(project, tmp_path):
    modules = tmp_path / "site"
    modules.mkdir()
    (modules / "threaded_at_import.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\nVALUE = 42\n"
    )
    (modules / "connected_at_import.py").write_text(
        "import socket\nLISTENER = socket.create_server(('127.0.0.1', 0))\nVALUE = 7\n"
    )
    (project / "nbflow.toml").write_text('preload = ["json", "no_such_module_here", "connected_at_import"]\n')
    write_notebook(
        project / "t.ipynb",
        'outputs = ["t.txt"]',
        "import sys\nprint('before', 'threaded_at_import' in sys.modules, 'connected_at_import' in sys.modules)",
        "import threaded_at_import as t, connected_at_import as c\nprint('values', t.VALUE, c.VALUE)",
        "open('t.txt', 'w').write('ok')",
    )
    result = run_cli("run", "--verbose", cwd=project, env={"PYTHONPATH": str(modules)})
    assert result.returncode == 0, result.stderr
    assert "not preloaded: no_such_module_here (not installed for this kernel)" in result.stderr
    assert "not preloaded: threaded_at_import (it starts a thread as it is imported: not safe to fork)" in result.stderr
    assert "not preloaded: connected_at_import (it opens a connection as it is imported: not safe to fork)" in (
        result.stderr
    )
    run_id = json.loads(run_cli("runs", "--json", cwd=project).stdout)[0]["id"]
    assert stdout_of(project / ".nbflow" / "runs" / run_id / "t.ipynb") == ["before False False", "values 42 7"]


def test_a_kernel_forks_once_its_own_imports_are_in_while_the_server_imports_what_later_notebooks_need(
    project, tmp_path
):
    # the module `second` imports waits, as the fork server imports it, for `first` to have run: a kernel that
    # waited for every preload would wait for it in vain (a minute, then the module says it never saw `first`)
    modules = tmp_path / "site"
    modules.mkdir()
    first_output = project / "first.txt"
    (modules / "waits_for_first.py").write_text(
        "import os, time\n"
        "deadline = time.monotonic() + 60\n"
        f"while not os.path.exists({str(first_output)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        f"SAW_FIRST = os.path.exists({str(first_output)!r})\n"
    )
    write_notebook(project / "first.ipynb", 'outputs = ["first.txt"]', "open('first.txt', 'w').write('done')")
    write_notebook(
        project / "second.ipynb",
        'outputs = ["second.txt"]',
        "import sys\nprint('preloaded', 'waits_for_first' in sys.modules)",
        "import waits_for_first\nprint('saw first', waits_for_first.SAW_FIRST)",
        "open('second.txt', 'w').write('done')",
    )
    result = run_cli("run", "-j", "2", "--verbose", cwd=project, env={"PYTHONPATH": str(modules)})
    assert result.returncode == 0, result.stderr
    assert "preloaded in the fork server: waits_for_first" in result.stderr
    run_id = json.loads(run_cli("runs", "--json", cwd=project).stdout)[0]["id"]
    # `second` forked once the module was in (it did not import it itself), after `first` had run meanwhile
    assert stdout_of(project / ".nbflow" / "runs" / run_id / "second.ipynb") == ["preloaded True", "saw first True"]


def test_preload_false_in_the_settings_turns_it_off(science):
    text = (science / "nbflow.toml").read_text()
    (science / "nbflow.toml").write_text("preload = false\n" + text)
    result = run_cli("run", "--verbose", "-t", "first", cwd=science, env={"NBFLOW_TEST_PRELOAD_TOKEN": "x"})
    assert result.returncode == 0, result.stderr
    assert "preloaded" not in result.stderr
    run_id = json.loads(run_cli("runs", "--json", cwd=science).stdout)[0]["id"]
    assert stdout_of(science / ".nbflow" / "runs" / run_id / "first.ipynb")[0] == "preloaded False"
    (science / "nbflow.toml").write_text("preload = 3\n")
    bad = run_cli("graph", cwd=science)
    assert bad.returncode == 2 and "`preload` must be true, false, or a list of modules" in bad.stderr

"""What the pipeline view's drawer reads and does through a real Jupyter Server: one task with its files (`GET
tasks/NAME`), a first look at a table or an image it wrote (`GET files/preview`), and "run from here" and "rerun
failed" (`POST runs` with `downstream` or `rerun_failed`)."""

from __future__ import annotations

import pytest
from conftest import write_notebook

from lab.conftest import wait_for_run

pytestmark = pytest.mark.timeout(300)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="  # 1x1


def shop(root) -> None:
    """extract writes 60 orders (CSV and JSON) and a chart; report reads the CSV; report fails while `flaky`
    exists."""
    (root / "nbflow.toml").write_text("")
    write_notebook(
        root / "extract.ipynb",
        'outputs = {"orders": "data/orders.csv", "json": "data/orders.json", "chart": "data/chart.png"}\nrows = 60',
        "import base64, json, os\nos.makedirs('data', exist_ok=True)\n"
        "records = [{'id': i, 'region': 'north' if i % 2 else 'south', 'amount': i * 1.5} for i in range(rows)]\n"
        "open(outputs['orders'], 'w').write('id,region,amount\\n' + ''.join("
        "f\"{r['id']},{r['region']},{r['amount']}\\n\" for r in records))\n"
        "json.dump(records, open(outputs['json'], 'w'))\n"
        f"open(outputs['chart'], 'wb').write(base64.b64decode('{PNG}'))",
    )
    write_notebook(
        root / "report.ipynb",
        'inputs = ["data/orders.csv"]\noutputs = ["out/report.txt"]',
        "import os\nif os.path.exists('flaky'):\n    raise RuntimeError('the mail server is down')",
        "os.makedirs('out', exist_ok=True)\nopen('out/report.txt', 'w').write(str(len(open(inputs[0]).readlines())))",
    )


async def run_to_end(api, body: dict) -> dict:
    status, started = await api("POST", "runs", body=body)
    assert status == 202, started
    return await wait_for_run(api, started["id"])


async def test_a_task_is_told_with_its_files_and_its_tables_and_images_are_previewed(jp_root_dir, api):
    shop(jp_root_dir)
    status, before = await api("GET", "tasks", "extract")
    assert status == 200, before
    assert before["status"]["status"] == "never_run" and before["last"] is None
    assert [(f["path"], f["exists"], f["preview"]) for f in before["outputs"]] == [
        ("data/orders.csv", False, "table"),
        ("data/orders.json", False, "table"),
        ("data/chart.png", False, "image"),
    ]
    assert before["downstream"] == ["report"] and before["params"] == {"rows": 60}

    assert (await run_to_end(api, {}))["state"] == "succeeded"
    status, after = await api("GET", "tasks", "extract")
    orders = after["outputs"][0]
    assert orders["exists"] and orders["size"] == (jp_root_dir / "data" / "orders.csv").stat().st_size
    assert orders["modified"] and after["status"]["status"] == "up_to_date"
    assert after["last"]["state"] == "succeeded" and after["last_run"]

    status, table = await api("GET", "files", "preview", params={"path": "data/orders.csv"})
    assert status == 200, table
    assert table["columns"] == ["id", "region", "amount"] and table["rows"][1] == ["1", "north", "1.5"]
    assert len(table["rows"]) == 50 and "first 50 rows" in table["note"]
    status, records = await api("GET", "files", "preview", params={"path": "data/orders.json"})
    assert records["columns"] == ["id", "region", "amount"] and records["total_rows"] == 60
    assert records["rows"][2] == ["2", "south", "3.0"]
    status, image = await api("GET", "files", "preview", params={"path": "data/chart.png"})
    assert image["kind"] == "image" and image["data_url"] == f"data:image/png;base64,{PNG}"


@pytest.mark.parametrize(
    "path, code, fragment",
    [
        ("nbflow.toml", 404, "no input or output a task declares"),
        ("../../etc/passwd", 400, "without `..`"),
        ("/etc/passwd", 400, "relative to the server's root"),
        ("report.ipynb", 404, "no input or output"),
    ],
)
async def test_only_the_files_tasks_declare_are_previewed(jp_root_dir, api, path, code, fragment):
    shop(jp_root_dir)
    status, body = await api("GET", "files", "preview", params={"path": path})
    assert status == code and fragment in body["message"], body


async def test_an_unknown_task_is_a_404(jp_root_dir, api):
    shop(jp_root_dir)
    status, body = await api("GET", "tasks", "nope")
    assert status == 404 and "no task 'nope'" in body["message"]


async def test_run_from_here_and_rerun_failed(jp_root_dir, api):
    shop(jp_root_dir)
    (jp_root_dir / "flaky").write_text("")
    failed = await run_to_end(api, {"params_text": {"rows": "10"}})
    assert {t["name"]: t["state"] for t in failed["tasks"]} == {"extract": "succeeded", "report": "failed"}

    (jp_root_dir / "flaky").unlink()
    rerun = await run_to_end(api, {"rerun_failed": failed["id"]})
    assert {t["name"]: t["state"] for t in rerun["tasks"]} == {"report": "succeeded"}
    assert (jp_root_dir / "out" / "report.txt").read_text() == "11"  # the 10 rows the failed run wrote, and a header

    here = await run_to_end(api, {"targets": ["extract"], "downstream": True, "force": True, "upstream": False})
    assert {t["name"]: t["state"] for t in here["tasks"]} == {"extract": "succeeded", "report": "succeeded"}

    status, body = await api("POST", "runs", body={"rerun_failed": here["id"]})
    assert status == 400 and "no failed or cancelled task" in body["message"]
    status, body = await api("POST", "runs", body={"rerun_failed": failed["id"], "targets": ["report"]})
    assert status == 400 and "leave out `targets`" in body["message"]

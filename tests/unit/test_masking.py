"""A secret a kernel printed in pieces is masked where the pieces meet, each output keeping its place in the cell, and
what holds no secret keeps its outputs as they were (the end-to-end case, with a real kernel, is in
tests/test_secrets.py)."""

from __future__ import annotations

import nbformat

from nbflow.masking import mask_streams

SECRET = "sk-abcdef"


def stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def shown(outputs: list) -> list[tuple[str, str]]:
    return [(o.get("name", o["output_type"]), o.get("text", "")) for o in outputs]


def test_a_secret_split_over_three_pieces_of_one_stream_is_masked_in_the_first_the_others_emptied():
    outputs = [stream("key: sk-"), stream("abc"), stream("def\n"), stream("warning", "stderr")]
    masked = [("stdout", "key: ***\n"), ("stdout", ""), ("stdout", ""), ("stderr", "warning")]
    assert shown(mask_streams(outputs, [SECRET])) == masked


def test_pieces_of_two_streams_or_around_another_output_are_not_joined():
    result = nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)
    outputs = [stream("sk-abc"), stream("def", "stderr"), stream("sk-abc"), result, stream("def")]
    assert shown(mask_streams(outputs, [SECRET])) == shown(outputs)


def test_outputs_holding_no_secret_are_kept_piece_by_piece():
    outputs = [stream("row 1\n"), stream("row 2\n")]
    assert shown(mask_streams(outputs, [SECRET])) == [("stdout", "row 1\n"), ("stdout", "row 2\n")]


def test_a_save_while_the_cell_runs_writes_the_pieces_masked(tmp_path):
    import datetime

    from nbflow.run.engine import ThrottledManager

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(key)")])
    notebook.cells[0].outputs = [stream("key: sk-abc"), stream("def\n")]
    path = tmp_path / "executed.ipynb"
    manager = ThrottledManager(notebook, output_path=str(path), progress_bar=False)
    manager.secrets = [SECRET]
    manager.last_save_time -= datetime.timedelta(seconds=60)  # the last save was long ago: this one writes
    manager.save()
    saved = nbformat.read(path, as_version=4).cells[0].outputs
    assert "".join(o["text"] for o in saved) == "key: ***\n"

"""A secret a kernel printed in pieces is masked where the pieces meet, and what holds no secret keeps its outputs
as they were (the end-to-end case, with a real kernel, is in tests/test_secrets.py)."""

from __future__ import annotations

import nbformat

from nbflow.masking import mask_streams

SECRET = "sk-abcdef"


def stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def shown(outputs: list) -> list[tuple[str, str]]:
    return [(o.get("name", o["output_type"]), o.get("text", "")) for o in outputs]


def test_a_secret_split_over_three_pieces_of_one_stream_is_masked_and_the_pieces_joined():
    outputs = [stream("key: sk-"), stream("abc"), stream("def\n"), stream("warning", "stderr")]
    assert shown(mask_streams(outputs, [SECRET])) == [("stdout", "key: ***\n"), ("stderr", "warning")]


def test_pieces_of_two_streams_or_around_another_output_are_not_joined():
    result = nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)
    outputs = [stream("sk-abc"), stream("def", "stderr"), stream("sk-abc"), result, stream("def")]
    assert shown(mask_streams(outputs, [SECRET])) == shown(outputs)


def test_outputs_holding_no_secret_are_kept_piece_by_piece():
    outputs = [stream("row 1\n"), stream("row 2\n")]
    assert shown(mask_streams(outputs, [SECRET])) == [("stdout", "row 1\n"), ("stdout", "row 2\n")]

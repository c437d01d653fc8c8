"""Secrets: parameters whose values come from environment variables (`[secrets]` in nbflow.toml), and the mask
that stands for their values wherever nbflow would show or keep one.

A secret travels through the pipeline as a `Secret`: a string that *is* the mask `***` and knows only the name of
its variable. The graph, the fingerprints, the store, every JSON shape and every interface handle it as that
string, so none of them can hold the value. The value is read from this process's environment only to start the
task's kernel (a job's `environment`), and the kernel reads it from its own environment through the code injected
in place of a literal. What a notebook prints (its outputs, its errors, its kernel's log) is masked with `mask`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SOURCE_PREFIX = "env:"
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# base64 payloads: masking them could only corrupt an image, never hide text
_BINARY_MIME = ("image/", "application/pdf", "application/octet-stream")


class Secret(str):
    """A parameter value read from the environment variable `variable`; as a string, the mask."""

    variable: str

    def __new__(cls, variable: str) -> Secret:
        secret = super().__new__(cls, MASK)
        secret.variable = variable
        return secret

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:  # a job carries it to a Dask worker
        return Secret, (self.variable,)

    def __repr__(self) -> str:
        return f"Secret({self.variable!r})"


def variable_of(source: Any) -> str | None:
    """The variable a `[secrets]` value names (`"env:SHOP_API_KEY"` -> `SHOP_API_KEY`); None when it names none."""
    if not isinstance(source, str) or not source.startswith(SOURCE_PREFIX):
        return None
    variable = source[len(SOURCE_PREFIX) :]
    return variable if VARIABLE.fullmatch(variable) else None


def secrets_in(parameters: Mapping[str, Any]) -> dict[str, str]:
    """The secret parameters among these: name -> the variable it reads."""
    return {name: value.variable for name, value in parameters.items() if isinstance(value, Secret)}


def environment(parameters: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a kernel needs in its environment for these parameters: each secret's variable and its value."""
    variables = secrets_in(parameters).values()
    return {variable: environ[variable] for variable in variables if variable in environ}


def mask(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with every secret in its text replaced by the mask: a string, or the strings inside dicts and lists
    (a notebook output, an error as JSON); binary payloads (base64 images) are left as they are."""
    hidden = sorted({s for s in secrets if s}, key=len, reverse=True)  # a secret holding another goes first
    return _mask(value, hidden) if hidden else value


def _mask(value: Any, hidden: list[str]) -> Any:
    if isinstance(value, str):
        for secret in hidden:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {
            key: item if isinstance(key, str) and key.startswith(_BINARY_MIME) else _mask(item, hidden)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask(item, hidden) for item in value]
    if isinstance(value, tuple):
        return tuple(_mask(item, hidden) for item in value)
    return value


def mask_streams(outputs: list[Any], secrets: Iterable[str]) -> list[Any]:
    """A cell's outputs with a secret masked where it was printed across consecutive outputs of one stream: a
    kernel sends what it prints in pieces, each masked alone, which a reader sees one after the other. A run of
    such pieces whose joined text holds a secret gets that text, masked, in its first piece, and the others are
    emptied (not removed: a later display update finds its output by its place in the cell). Changed in place."""
    run: list[Any] = []  # consecutive outputs of one stream
    for output in [*outputs, None]:
        if output is not None and run and _same_stream(run[0], output):
            run.append(output)
            continue
        if len(run) > 1:
            joined = "".join(_text(piece) for piece in run)
            masked = mask(joined, secrets)
            if masked != joined:
                run[0]["text"] = masked
                for piece in run[1:]:
                    piece["text"] = ""
        run = [output] if output is not None and output.get("output_type") == "stream" else []
    return outputs


def _same_stream(first: Any, output: Any) -> bool:
    return bool(output.get("output_type") == "stream" and output.get("name") == first.get("name"))


def _text(output: Any) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else str(text)


def mask_file(path: str, secrets: Iterable[str]) -> None:
    """Rewrite the file with every secret in it masked; a file holding none, or none at all, is left alone."""
    hidden = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
    if not hidden:
        return
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return
    masked = data
    for secret in hidden:
        masked = masked.replace(secret, MASK.encode())
    if masked != data:
        with open(path, "wb") as fh:
            fh.write(masked)

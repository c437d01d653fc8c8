"""Request bodies read with their models (`nbflow.shapes`), and every mistake in one phrased for the person who
sent it: the field, what it must be, in words (never a validation dump or a traceback).

Targets and parameter names are checked against the pipeline here too, in the request's own words ("target
`x`", "parameter `n`"), before the run preparation checks them again in the words of `nbflow run`'s options.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from nbflow.server.errors import ApiError

MAX_BODY = 1024 * 1024  # bytes: a run or a schedule is a few hundred; more is a mistake or an attack
_NOT_AN_OBJECT = {"model_type", "model_attributes_type", "dict_type"}

Model = TypeVar("Model", bound=BaseModel)


def read_body(model: type[Model], body: bytes) -> Model:
    """The request body as `model`: an empty body is `{}`; too large a body is refused before it is parsed."""
    if len(body) > MAX_BODY:
        raise ApiError(413, f"the request body has {len(body)} bytes; the nbflow API takes at most {MAX_BODY}.")
    try:
        return model.model_validate_json(body if body.strip() else b"{}")
    except ValidationError as exc:
        raise ApiError.listing(400, describe(model, exc)) from None


def describe(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """One sentence per mistake; the fields a body should not have are named together."""
    fields = list(model.model_fields)
    errors = exc.errors(include_url=False)
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    sentences = [f"unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}."] if unknown else []
    for error in errors:
        if error["type"] != "extra_forbidden":
            sentence = _sentence(model, fields, error)
            if sentence not in sentences:
                sentences.append(sentence)
    return sentences


def _sentence(model: type[BaseModel], fields: list[str], error: ErrorDetails) -> str:
    loc, kind = error["loc"], error["type"]
    context = error.get("ctx") or {}
    if kind == "json_invalid":
        return f"the request body is not valid JSON: {context.get('error', error['msg'])}."
    if not loc:
        if kind in _NOT_AN_OBJECT:
            return f"the request body must be a JSON object with the fields {', '.join(fields)}."
        return str(context.get("error", error["msg"]))  # a check across fields, phrased where it is made
    field = str(loc[0])
    info = model.model_fields.get(field)
    wanted = info.description if info and info.description else "of another type"
    if kind == "value_error":
        return str(context["error"])
    if kind == "missing":
        return f"`{field}` is required; it must be {wanted}."
    inner = [f"item {part + 1}" if isinstance(part, int) else f"`{part}`" for part in loc[1:]]
    reason = error["msg"][:1].lower() + error["msg"][1:]  # pydantic's own words on the value inside
    detail = f" ({', '.join(inner)}: {reason})" if inner else ""
    return f"`{field}` must be {wanted}{detail}."

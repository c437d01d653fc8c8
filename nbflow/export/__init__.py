"""Pipelines written out for other orchestrators (`nbflow export ...`): text generation only, so nbflow never
imports them."""

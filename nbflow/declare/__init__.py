"""Declarations: notebook files read into `TaskSpec`s (what each task reads, writes and takes as parameters)."""

from nbflow.declare.reading import SUFFIXES, Unreadable, is_text_notebook, paired_formats, read_notebook
from nbflow.declare.spec import DECLARATIONS, Param, PathsDeclared, TaskSpec, map_paths, paths_of, read_spec

__all__ = [
    "DECLARATIONS",
    "SUFFIXES",
    "Param",
    "PathsDeclared",
    "TaskSpec",
    "Unreadable",
    "is_text_notebook",
    "map_paths",
    "paired_formats",
    "paths_of",
    "read_notebook",
    "read_spec",
]

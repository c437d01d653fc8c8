"""Declared paths as the graph and the fingerprints see them: files, folders (a trailing `/`) and globs.

A glob (`*`, `?`, `[...]`, `**` for any depth) names every file it matches; wcmatch does the matching, the same
way for the paths tasks declare (to link tasks) and for the files on disk (to inject and fingerprint them).
"""

from __future__ import annotations

import bisect
import functools
import os
import stat

from wcmatch import glob as wcglob

_FLAGS = wcglob.GLOBSTAR | wcglob.NODIR


def is_folder(path: str) -> bool:
    return path.endswith("/")


@functools.lru_cache(maxsize=65536)  # asked of every declared path while linking and judging, many times each
def is_glob(path: str) -> bool:
    return bool(wcglob.is_magic(path, flags=_FLAGS))


def literal_prefix(pattern: str) -> str:
    """The text before a glob's first wildcard: every path it matches starts with it."""
    cut = min((i for i in (pattern.find(c) for c in "*?[\\") if i >= 0), default=len(pattern))
    return pattern[:cut]


def starting_with(prefix: str, ordered: list[str]) -> list[str]:
    """The paths of the sorted list `ordered` that start with `prefix`, found by bisection."""
    start = bisect.bisect_left(ordered, prefix)
    end = start
    while end < len(ordered) and ordered[end].startswith(prefix):
        end += 1
    return ordered[start:end]


def glob_base(pattern: str) -> str:
    """The folder a glob looks in: its leading components without wildcards (`/d/in/**/*.csv` -> `/d/in`)."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if is_glob(part):
            break
        fixed.append(part)
    return "/".join(fixed) or "/"


@functools.lru_cache(maxsize=4096)
def _matcher(pattern: str) -> wcglob.WcMatcher[str]:
    return wcglob.compile(pattern, flags=_FLAGS)


def matches(pattern: str, path: str) -> bool:
    """`path` (absolute, normalised) is one the glob `pattern` names."""
    return bool(_matcher(pattern).match(path))


def expand(pattern: str) -> list[str]:
    """The files on disk the glob matches now, sorted (hidden files only where the pattern names them).

    The files under the glob's fixed folder are listed once and matched with the compiled pattern: walking the
    pattern part by part costs far more where many globs look into one big folder (every day of a backfill reading
    its reports)."""
    base = glob_base(pattern)
    if "**" not in pattern and pattern.count("/") == base.count("/") + 1:  # wildcards in the file name only
        try:
            names = [entry.path for entry in os.scandir(base) if entry.is_file()]
        except OSError:
            return []
    else:
        names = [os.path.join(folder, name) for folder, _, files in os.walk(base) for name in files]
    matcher = _matcher(pattern)
    return sorted(os.path.normpath(path) for path in names if matcher.match(path))


def under(path: str, folder: str) -> bool:
    """`path` lies inside `folder` (both absolute; the folder with or without its trailing `/`)."""
    prefix = folder.rstrip("/") + "/"
    return path.startswith(prefix) and path.rstrip("/") != folder.rstrip("/")


def may_hold_matches(folder: str, pattern: str) -> bool:
    """Files written anywhere under `folder` could match `pattern`: one of the two lies within the other."""
    base = glob_base(pattern).rstrip("/")
    folder = folder.rstrip("/")
    return base == folder or under(base, folder) or under(folder, base)


def special_kind(mode: int) -> str:
    """What a path that is neither a regular file nor a folder is, in words."""
    kinds = [
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "folder"),
    ]
    return next((name for test, name in kinds if test(mode)), "special file")


def not_a_file(path: str) -> str | None:
    """What a path declared as a file is when it exists and is no regular file (`folder`, `FIFO (named pipe)`,
    ...); None for a regular file, a missing one, and for folders (`x/`) and globs, which hold files."""
    if path.endswith("/") or is_glob(path):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else special_kind(mode)


Signature = tuple[tuple[str, int, int, int], ...]


def signature(path: str) -> Signature | None:
    """What changes whenever a file is written (its inode, size and modification time to the nanosecond); of a
    folder, that of everything in it. None when it does not exist. Compared before and after a task runs, it says
    whether the task wrote the path, whatever the clocks say."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not is_folder(path):
        return (("", stat.st_ino, stat.st_size, stat.st_mtime_ns),)
    entries = [("", stat.st_ino, 0, stat.st_mtime_ns)]
    for folder, dirnames, files in os.walk(path):
        dirnames.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            try:
                inner = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), inner.st_ino, inner.st_size, inner.st_mtime_ns))
    return tuple(entries)

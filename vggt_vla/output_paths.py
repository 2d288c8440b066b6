"""The one rule for output paths: every path a CLI will write is checked before any data or model
is loaded, so a bad --json, --videos, --plots, --log_dir or --out costs seconds, not a run.

    from vggt_vla.output_paths import OutputPathError, check_output_dir, check_output_file
    try:
        check_output_file(args.json, "--json")
        check_output_dir(args.videos, "--videos")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

A check writes nothing that outlives it: it looks at the path and its nearest existing ancestor,
and proves that ancestor writable by creating an anonymous temporary file there (permissions
alone do not tell: root may write anywhere except read-only mounts and pseudo-filesystems such as
/sys).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]


class OutputPathError(ValueError):
    """An output path cannot be written. The message is one line: the flag, the path, the problem
    and the fix."""


def check_output_file(path: Optional[PathLike], flag: str) -> Optional[Path]:
    """`path` can be written as a file: it is a file (replaced) or can be created. None passes."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{flag} {path}: is a directory, and a file goes here; give a file path "
                              f"such as {path / 'result.json'}")
    if path.exists() and not path.is_file():
        raise OutputPathError(f"{flag} {path}: exists and is not a regular file; give another path")
    _check_creatable(path.parent, flag, path)
    return path


def check_output_dir(path: Optional[PathLike], flag: str) -> Optional[Path]:
    """`path` can hold the files a command writes: it is a directory or can be created. None passes."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path}: is a file, and a directory goes here; give a directory "
                              f"path (it is created if missing)")
    _check_creatable(path, flag, path)
    return path


def _check_creatable(directory: Path, flag: str, shown: Path) -> None:
    """Files can be created in `directory`, or in its nearest existing ancestor (which must be a
    directory: a file in the way makes the path impossible)."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputPathError(f"{flag} {shown}: {existing} is a file, so nothing can be created under it; "
                              f"give a path whose parents are directories")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OutputPathError(f"{flag} {shown}: cannot write under {existing} ({reason}); give a path in "
                              f"a writable directory") from None

"""The check `nola repro` makes before DVC hashes anything: every ``data.root`` of params.yaml.

`dvc repro` hashes each root (a dependency of ``split``) before any of our code runs: a named pipe
makes it block forever with no output, and a symlink loop, a link to nothing or a file it may not
read stops it with a bare errno message. Here each such entry is named with what to do; the
advice differs for a root inside the project (``.dvcignore`` works there) and outside it (DVC
refuses a ``.dvcignore`` in a folder outside the repo, so the entry has to go).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pathspec

from pipeline.core.errors import NolaError
from pipeline.core.params import Params

_KINDS = {
    stat.S_ISFIFO: "a named pipe (FIFO): DVC would wait on it forever",
    stat.S_ISSOCK: "a socket: DVC cannot hash it",
    stat.S_ISCHR: "a character device: DVC cannot hash it",
    stat.S_ISBLK: "a block device: DVC cannot hash it",
}
LIMIT = 20  # problems listed in full; the count says how many more


class DataRootError(NolaError, ValueError):
    """A data root holding entries that DVC cannot hash."""


def _dvcignore(project: Path) -> pathspec.PathSpec:
    path = project / ".dvcignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return pathspec.PathSpec.from_lines("gitignore", lines)


def _problem(path: Path) -> str | None:
    """What is wrong with one entry for DVC, or None."""
    try:
        st = path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symlink loop"
        if err.errno == errno.ENOENT:
            return f"a symbolic link to nothing (-> {os.readlink(path)})"
        return f"cannot be read ({err.strerror})"
    for test, kind in _KINDS.items():
        if test(st.st_mode):
            return kind
    if stat.S_ISREG(st.st_mode):
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        except PermissionError:
            return "not readable by this user (chmod a+r, or remove it)"
    return None


def root_problems(root: Path, project: Path) -> list[tuple[Path, str]]:
    """(path, what is wrong) for each entry under ``root`` that DVC would hang or stop on; entries
    that the project's ``.dvcignore`` excludes are skipped, as DVC skips them."""
    root, project = Path(os.path.abspath(root)), Path(os.path.abspath(project))
    inside = root.is_relative_to(project)
    ignore = _dvcignore(project) if inside else pathspec.PathSpec([])
    problems: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def walk(folder: Path) -> None:
        seen.add(folder.resolve())
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except PermissionError:
            problems.append((folder, "a folder this user may not list (chmod a+rx, or remove it)"))
            return
        for entry in entries:
            path = Path(entry.path)
            if inside:
                rel = path.relative_to(project).as_posix()
                if ignore.match_file(rel) or ignore.match_file(rel + "/"):
                    continue
            if (problem := _problem(path)) is not None:
                problems.append((path, problem))
            elif path.is_dir() and path.resolve() not in seen:
                walk(path)

    if root.is_dir():  # a missing root is the split stage's (or fetch-data's) to report
        walk(root)
    return problems


def advice(root: Path, project: Path, paths: list[Path]) -> str:
    """What to do, worded for where the root lies."""
    root, project = Path(os.path.abspath(root)), Path(os.path.abspath(project))
    if root.is_relative_to(project):
        lines = "\n".join(f"    /{Path(os.path.abspath(p)).relative_to(project).as_posix()}" for p in paths[:LIMIT])
        return (
            "delete these entries or move them out of the folder, or (the root is inside the project) "
            f"add these lines to {project / '.dvcignore'}:\n{lines}"
        )
    return (
        "delete these entries or move them out of the folder: the root is outside the project, and DVC "
        "reads no .dvcignore there"
    )


def check_data_roots(params: Params, project: Path) -> None:
    """Raise one :class:`DataRootError` naming every unhashable entry of every data root."""
    reports = []
    for name, dataset in params.datasets.items():
        root = Path(dataset.data.root)
        root = root if root.is_absolute() else project / root
        problems = root_problems(root, project)
        if not problems:
            continue
        listed = "\n".join(f"  {path}: {problem}" for path, problem in problems[:LIMIT])
        more = f"\n  ... and {len(problems) - LIMIT} more" if len(problems) > LIMIT else ""
        reports.append(
            f"datasets.{name}.data.root = {dataset.data.root!r}: {len(problems)} entries that DVC cannot hash "
            f"(it hashes the root before any stage runs):\n{listed}{more}\n"
            f"  what to do: {advice(root, project, [p for p, _ in problems])}"
        )
    if reports:
        raise DataRootError("\n".join(reports))

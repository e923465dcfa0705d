"""Output folders that never lose a user's files.

A tool writes its whole result into a temporary sibling folder (``.<name>.partial-XXXX`` beside
the destination) and only when it is complete moves it into place: an existing folder is moved
aside, the new one moved in, and the old one deleted last. A failure (bad input, an exception,
Ctrl-C) removes the partial folder and leaves the destination as it was.

This module only uses the standard library, so that light tools (``tools/make_toy_dataset.py``)
can load it by path without importing the OpenMMLab stack.
"""
import fnmatch
import os
import os.path as osp
import shutil
import tempfile
from typing import Optional, Sequence


def _unexpected(path: str, expected: Optional[Sequence[str]]):
    if expected is None:
        return []
    return sorted(
        n for n in os.listdir(path) if not any(fnmatch.fnmatchcase(n, pat) for pat in expected))


def check_output_dir(path: str,
                     overwrite: bool = False,
                     expected: Optional[Sequence[str]] = None,
                     flag: str = '--overwrite') -> None:
    """Refuse to write into ``path`` when that would replace what is there without being asked.

    Args:
        path (str): the destination folder.
        overwrite (bool): the user asked to replace an existing non-empty folder.
        expected (list[str], optional): names (fnmatch patterns) of the entries this tool
            writes. With ``overwrite``, a folder holding anything else is still refused: it is
            not an earlier output of this tool (e.g. ``--out-dir .`` by mistake).
        flag (str): the option named in the messages.

    Raises:
        FileExistsError: ``path`` is a file, or a non-empty folder and not ``overwrite``, or
            with ``overwrite`` holds entries the tool does not write.
    """
    if not osp.lexists(path):
        return
    if not osp.isdir(path):
        raise FileExistsError(f'{path} exists and is not a folder; choose another output path')
    entries = os.listdir(path)
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(f'output folder {path} exists and is not empty; pass {flag} to '
                              'replace it, or choose another output folder')
    foreign = _unexpected(path, expected)
    if foreign:
        shown = ', '.join(foreign[:5]) + (', ...' if len(foreign) > 5 else '')
        raise FileExistsError(
            f'output folder {path} holds files this tool does not write ({shown}); refusing to '
            f'replace it even with {flag}: choose another output folder')


def replace_dir(new: str, dst: str) -> None:
    """Move the complete folder ``new`` to ``dst``; an existing ``dst`` is moved aside first
    and deleted only once ``new`` is in place (it is moved back if that move fails)."""
    parent, name = osp.split(osp.abspath(dst))
    old = None
    if osp.lexists(dst):
        old = tempfile.mkdtemp(prefix=f'.{name}.old-', dir=parent)
        old = osp.join(old, name)
        os.rename(dst, old)
    try:
        os.rename(new, dst)
    except BaseException:
        if old is not None:
            os.rename(old, dst)
            shutil.rmtree(osp.dirname(old), ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(osp.dirname(old))


class StagedOutputDir:
    """Context manager: yields a temporary sibling folder of ``path`` to write into; on a clean
    exit it replaces ``path`` (see :func:`replace_dir`), on an exception it is deleted and
    ``path`` is left untouched. The checks of :func:`check_output_dir` run on entry and again
    before the swap.

    Example::

        with StagedOutputDir(out_dir, overwrite, expected=['exp*', 'results.json']) as tmp:
            write_everything(tmp)
    """

    def __init__(self,
                 path: str,
                 overwrite: bool = False,
                 expected: Optional[Sequence[str]] = None,
                 flag: str = '--overwrite') -> None:
        self.path = osp.normpath(path)
        self.overwrite = overwrite
        self.expected = expected
        self.flag = flag
        self.tmp = None

    def check(self) -> None:
        check_output_dir(self.path, self.overwrite, self.expected, self.flag)

    def __enter__(self) -> str:
        self.check()
        parent, name = osp.split(osp.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=f'.{name}.partial-', dir=parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is not
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            self.check()  # the folder may have changed while the tool ran
        except FileExistsError as err:
            raise FileExistsError(f'{err} (the new result is kept in {self.tmp})') from None
        replace_dir(self.tmp, self.path)
        return False

"""Outputs that appear only once complete, for every command and both forecast engines.

An output is checked before any work (its directory exists and is writable), written beside itself under
a hidden temporary name, and renamed into place when the writing succeeded: an error or an interrupt
leaves no partial file, and an earlier output stays untouched until the new one replaces it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tsattn.errors import TsattnError


def output_parent(output: Path) -> Path:
    """The directory `output` is written in (`.` for a bare file name)."""
    return output.parent if str(output.parent) else Path(".")


def check_output_parent(output: Path) -> Path:
    """Fail before any work when nothing can be written where `output` is asked; returns its directory."""
    parent = output_parent(output)
    if not parent.is_dir():
        raise TsattnError(f"-o {output}: the directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise TsattnError(f"-o {output}: the directory {parent} is not writable")
    return parent


def check_output(output: Path) -> None:
    """Fail before any work when the output file cannot be written where asked."""
    check_output_parent(output)
    if output.is_dir():
        raise TsattnError(f"-o {output} is a directory; give a file name")


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """A temporary file beside `output`, renamed over it only when the block succeeds."""
    handle, temporary = tempfile.mkstemp(dir=output_parent(output), prefix=f".{output.name}.", suffix=".partial")
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        publish(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)


def publish(source: Path, output: Path) -> None:
    """Rename a complete file or directory over `output`, with the permissions a new one normally has.

    mkstemp and mkdtemp make their results private (0600, 0700): the output gets the mode of a file the
    user would have created there. An earlier directory output is set aside, replaced, then removed.
    """
    parent = output_parent(output)
    if source.is_file():
        os.chmod(source, new_file_mode(parent))
        os.replace(source, output)
        return
    os.chmod(source, new_file_mode(parent, folder=True))
    old = None
    if output.exists():
        old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{output.name}.", suffix=".old")) / "old"
        os.replace(output, old)
    try:
        os.replace(source, output)
    except OSError:
        if old is not None:  # the earlier output goes back where it was
            os.replace(old, output)
            shutil.rmtree(old.parent, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def new_file_mode(directory: Path, folder: bool = False) -> int:
    """The permissions a new file (or folder) gets in `directory`: a probe is created with the widest mode,
    the system applies the process umask, and the mode is read back and the probe removed. Reading the umask
    with os.umask would set it process-wide for a moment, and files that other threads create in that moment
    would be public."""
    for attempt in range(100):
        probe = Path(directory) / f".tsattn-mode-{os.getpid()}-{attempt}"
        try:
            if folder:
                os.mkdir(probe, 0o777)
            else:
                os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        try:
            return probe.stat().st_mode & 0o777
        finally:
            probe.rmdir() if folder else probe.unlink()
    raise OSError(f"could not create a file in {directory}")

"""Write a whole folder atomically: build it beside its destination, then rename it into place.

A crash or an error while exporting or importing never leaves a half-written folder that looks
like a valid model: the temporary folder has a name no loader looks at and is removed on error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import ConfigError


@contextmanager
def atomic_folder(destination: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary folder that becomes ``destination`` when the block ends without error.

    Args:
        destination: the final folder path.
        overwrite: replace an existing destination (only after the new folder is complete).

    Raises:
        ConfigError: destination exists (and overwrite is False) or its parent can't be written.
    """
    destination = destination.expanduser().resolve()
    if destination.exists() and not overwrite:
        raise ConfigError(f"{destination} already exists",
                          hint="choose another --out or remove it first",
                          app_hint="choose another name or remove it first")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(
            tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent)
        )
    except OSError as error:
        raise ConfigError(f"{destination.parent}: cannot write here ({error.strerror})") from None
    try:
        yield temporary
        if destination.exists():
            # Swap in two renames so the old folder disappears only once the new one is whole.
            backup = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            destination.rename(backup)
            temporary.rename(destination)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            temporary.rename(destination)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise

"""Reading a file a person points drills at, bounded: regular files only, and never more than a cap.

A path can name a FIFO (``open`` blocks until a writer comes, ``read`` until it closes), a device
(``/dev/zero`` never ends and ``stat`` says it is 0 bytes long), a directory, or a symlink to any of these;
and what ``stat(path)`` saw is not necessarily what ``open(path)`` gets a moment later. So the file is opened
without blocking, the *opened descriptor* is ``fstat``-ed, and the size cap is counted on the bytes actually
read (``limit + 1`` of them at most: one more than the cap means too large).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from drills.errors import UsageError

#: No scenario, policy, plan, responder profile or experiment is anywhere near this.
MAX_BYTES = 2 * 1024 * 1024

_CHUNK = 64 * 1024


class UnreadableFile(UsageError):
    """A file drills was asked to read is not a regular file, cannot be opened, or is too large."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}", hint="give the path of a regular file (YAML or JSON text)")
        self.path = str(path)
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(path: Path | str, *, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most ``limit`` of them.

    Raises :class:`UnreadableFile` (the reason in words, the path named) for anything else; never blocks on
    a FIFO or a device and never reads more than ``limit + 1`` bytes.
    """
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one; O_NOCTTY: a
    # terminal device named by mistake does not become our controlling terminal.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile(path, "no such file") from None
    except IsADirectoryError:
        raise UnreadableFile(path, "is a directory, not a file") from None
    except OSError as e:
        raise UnreadableFile(path, f"cannot read: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile(path, "is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise UnreadableFile(
                path, f"is {_kind(mode)}, not a regular file; drills reads regular files only"
            )
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise UnreadableFile(path, f"cannot read: {e.strerror or e}") from e
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise UnreadableFile(path, f"file is too large (more than {limit} bytes)")
    return data


__all__ = ["MAX_BYTES", "UnreadableFile", "read_bounded"]

"""Runs a parser in a child process that can be killed: the guard for parsers we cannot trust.

A pure-Python parser fed a hostile file can loop for minutes or allocate gigabytes, and a thread
cannot be stopped from outside. A child process can: it is started with the "spawn" method (no
forked copy of a Qt app's threads and locks), capped in address space by the child itself, and
killed when the caller's guard says the time is up or the user cancelled. Messages come back as
JSON over a pipe, never as pickles, so even a child that a malicious file took over could not
make the parent run code.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection
from typing import Any

from engine.documents.limits import MB, ReadGuard, format_size

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the parent checks the deadline and should_stop while it waits
JOIN_S = 5.0  # how long to wait for a killed child to be reaped


def send(connection: Connection, message: dict[str, Any]) -> None:
    """Sends one message from the child (a JSON object)."""
    connection.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8"))


def cap_memory(memory_mb: int) -> None:
    """Limits this process's address space to what it maps now plus ``memory_mb`` (POSIX).

    Called in the child after its imports, so the interpreter and the parser's own code do not
    eat into the budget. Allocations beyond it raise MemoryError instead of swapping the machine.
    Windows has no RLIMIT_AS (there only the timeout applies), and macOS refuses limits below its
    large default mapping; both are logged and skipped.
    """
    if sys.platform == "win32":
        return
    import resource

    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        mapped = 0  # no /proc (macOS): the budget is the whole address space
    limit = mapped + memory_mb * MB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as error:
        log.warning("cannot cap the document reader's memory: %s", error)


def child_messages(target: Callable[..., None], args: tuple[Any, ...], guard: ReadGuard,
                   max_message_bytes: int) -> Generator[dict[str, Any], None, None]:
    """Starts ``target(connection, *args)`` in a child process and yields what it sends.

    The last message is always ``{"type": "exit", "code": <exit code>}``. The child is killed
    (and reaped) when the guard raises (timeout or cancel), when the caller stops iterating (use
    ``contextlib.closing``), or on any error; it never outlives this generator.

    Args:
        target: a module-level function (it is imported by name in the child).
        args: its arguments after the connection; must be picklable.
        guard: checked every ``POLL_S`` seconds while waiting.
        max_message_bytes: the largest message accepted; a bigger one ends the read.

    Raises:
        DocumentError: from the guard; OperationCancelledError when ``should_stop`` said so.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, *args), daemon=True,
                              name="nightlamp-document-reader")
    try:
        try:
            process.start()
        except OSError as error:  # out of processes or memory, or a broken frozen build
            raise guard.fail(f"cannot start the reader process ({error})") from None
        # Close the parent's copy of the sending end, so the pipe reports EOF once the child
        # exits (however it exits) instead of waiting for a message that never comes.
        sender.close()
        while True:
            guard.check()
            if not receiver.poll(POLL_S):
                continue
            try:
                data = receiver.recv_bytes(max_message_bytes)
            except EOFError:
                break
            except OSError:  # longer than max_message_bytes: the pipe refuses to read it
                raise guard.fail(f"too much text on one page (over "
                                 f"{format_size(max_message_bytes)}); split the document") from None
            yield json.loads(data.decode("utf-8"))
        process.join(JOIN_S)
        yield {"type": "exit", "code": process.exitcode}
    finally:
        receiver.close()
        if not sender.closed:
            sender.close()
        _stop(process)


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    """Kills the child if it still runs and reaps it, so no zombie or orphan is left."""
    if process.pid is None:  # never started
        return
    if process.is_alive():
        process.kill()
    process.join(JOIN_S)
    if process.exitcode is not None:
        process.close()
    else:  # pragma: no cover - a child that survives SIGKILL for seconds is an OS problem
        log.warning("document reader process %s did not exit", process.pid)

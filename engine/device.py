"""Chooses ONNX Runtime execution providers: CUDA when a GPU is actually usable, else CPU.

onnxruntime-gpu lists the CUDA provider even on machines without a GPU or without CUDA/cuDNN,
and logs a loud error when it fails to load it. So usability is decided by creating a session and
looking at the providers it really got, with ONNX Runtime's logging silenced meanwhile.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import onnxruntime as ort

from engine.errors import ConfigError, DeviceError

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_FATAL_ONLY = 4
_WARNING = 2

logger = logging.getLogger(__name__)

# A serialized ONNX model with one Identity node (65 bytes), enough to make ONNX Runtime load its
# CUDA provider library. Kept as bytes so the engine needs no `onnx` package at run time.
_PROBE_MODEL = (
    b"\x08\n:7\n\x10\n\x01x\x12\x01y\"\x08Identity\x12\x01gZ\x0f\n\x01x\x12\n\n\x08\x08\x01\x12"
    b"\x04\n\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01B\x04\n\x00\x10\x15"
)


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores among the usable ones (ONNX Runtime's default pool has a thread each);
    the usable count where the OS does not say which logical CPUs share a core."""
    try:
        usable = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return cpu_cores()
    cores = set()
    for cpu in usable:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(),
                       topology.joinpath("core_id").read_text().strip()))
        except OSError:
            return cpu_cores()
    return max(1, len(cores))


def session_threads(threads: int | None) -> int | None:
    """Intra-op threads for ONNX Runtime: None or 0 for its default, else at most `cpu_cores`.

    More threads than cores only makes a run slower, and a huge count makes ONNX Runtime try to
    start that many threads (a million grew to 9.6 GB and crashed); callers that take the count
    from a user refuse it beforehand (``--threads``), this is the last line of defence.

    Raises:
        ConfigError: a negative or non-integer count.
    """
    if threads is None or threads == 0:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"threads must be a positive integer or None (got {threads!r})")
    cores = cpu_cores()
    if threads > cores:
        logger.warning("%d threads asked for but only %d CPU cores are usable; using %d",
                       threads, cores, cores)
        return cores
    return threads


def quiet_session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = _FATAL_ONLY
    return options


@functools.lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """True when a CUDA session can really be created here (result cached per process)."""
    if CUDA not in ort.get_available_providers():
        return False
    ort.set_default_logger_severity(_FATAL_ONLY)
    try:
        session = ort.InferenceSession(_PROBE_MODEL, quiet_session_options(), providers=[CUDA, CPU])
        usable = CUDA in session.get_providers()
    except Exception as error:  # a broken CUDA install must mean "no GPU", not a crash
        logger.info("CUDA probe failed: %s", error)
        usable = False
    finally:
        ort.set_default_logger_severity(_WARNING)
    logger.info("CUDA usable: %s", usable)
    return usable


def providers_for(device: str) -> list[str]:
    """Execution providers for ``auto``, ``cpu`` or ``cuda``.

    Raises:
        DeviceError: unknown device, or ``cuda`` asked for where no GPU is usable.
    """
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
    if device == "cpu":
        return [CPU]
    if cuda_usable():
        return [CUDA, CPU]
    if device == "cuda":
        raise DeviceError(
            "device 'cuda' was asked for but no usable NVIDIA GPU was found (needs a CUDA 13 / "
            "cuDNN 9 capable GPU and driver)", hint="use --device cpu or auto",
            app_hint="choose the CPU or Auto device in Models")
    return [CPU]


def device_of(session: ort.InferenceSession) -> str:
    """'cuda' or 'cpu': what a created session actually runs on."""
    return "cuda" if CUDA in session.get_providers() else "cpu"

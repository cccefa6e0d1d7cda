"""Chooses ONNX Runtime execution providers: CUDA when a GPU is actually usable, else CPU.

onnxruntime-gpu lists the CUDA provider even on machines without a GPU or without CUDA/cuDNN,
and logs a loud error when it fails to load it. So usability is decided by creating a session and
looking at the providers it really got, with ONNX Runtime's logging silenced meanwhile.
"""

from __future__ import annotations

import functools
import logging

import onnxruntime as ort

from engine.errors import DeviceError

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

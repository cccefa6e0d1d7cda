"""Error types for everything the engine reports to users.

Every message is one line that names the file or value at fault and says what to do about it, so
CLIs can print ``str(error)`` and exit 2 without a traceback, and the GUI can show it as-is.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of expected, user-facing failures (bad input, missing files, bad settings)."""


class ModelNotFoundError(EngineError):
    """A model folder or model name that does not exist."""


class ModelFormatError(EngineError):
    """A model folder whose manifest, ONNX file or layout is invalid."""


class TokenizerError(EngineError):
    """A tokenizer file that is missing, unreadable or does not match the model."""


class ConfigError(EngineError):
    """A bad setting: sampling values, devices, chat templates, presets."""


class DeviceError(ConfigError):
    """A device that was asked for but cannot be used (e.g. CUDA without a usable GPU)."""


class InferenceError(EngineError):
    """ONNX Runtime failed while running a model that loaded fine."""


class DocumentError(EngineError):
    """A document that cannot be read (corrupt, encrypted, too large, not text)."""


class OperationCancelledError(EngineError):
    """The caller's ``should_stop`` asked a long operation to end (not a failure)."""

"""Error types for everything the engine reports to users.

Every message is one line that names the file or value at fault and says what to do about it, so
CLIs can print ``str(error)`` and exit 2 without a traceback, and the GUI can show it as-is.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of expected, user-facing failures (bad input, missing files, bad settings).

    What to do about a failure often depends on where the user is: the command line says
    "pass --from LANG", the app "choose the source language". Such an error keeps the two apart:
    ``str(error)`` is the message with the command-line ``hint`` (what CLIs print), and
    :meth:`for_app` the message with the ``app_hint`` (what the desktop shows; never a flag).

    Args:
        message: what went wrong, naming the file or value.
        hint: what to do, in command-line words (options, commands).
        app_hint: the same advice in the app's words; without it the app shows the message alone.
    """

    def __init__(self, message: str = "", *, hint: str | None = None,
                 app_hint: str | None = None) -> None:
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message = message
        self.hint = hint
        self.app_hint = app_hint

    def for_app(self) -> str:
        """The message for the desktop app: its own advice, no command-line options."""
        if self.hint is None:
            return str(self)
        return f"{self.message}; {self.app_hint}" if self.app_hint else self.message


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
    """The caller's ``should_stop`` asked a long operation to end (not a failure).

    The one shape of cancellation for operations that return a whole result (reading a document,
    summarizing, translating, evaluating): they raise this and return nothing. A token stream
    (``engine.generation``) instead ends with ``finish_reason == "cancelled"``, because the text
    streamed so far is a result the caller keeps (a stopped chat answer).
    """

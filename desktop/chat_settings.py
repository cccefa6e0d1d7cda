"""Per-conversation generation settings: the values, their stored form, and the dialog.

:class:`ChatSettings` is what a conversation remembers (the history stores ``to_dict()`` as
JSON); :meth:`ChatSettings.from_dict` reads it back and never fails, because the stored dict may
come from an older version or a hand edit. :class:`ChatSettingsDialog` edits one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.conversation import CHAT_MAX_TOKENS
from engine.errors import ConfigError
from engine.retrieval.collection import check_collection_name
from engine.sampling import SamplingSettings

__all__ = ["LIMITS", "ChatSettings", "ChatSettingsDialog"]

# The engine owns the sampling values' defaults and what makes one valid (SamplingSettings);
# the app only narrows them to the range its dialog offers.
_ENGINE = SamplingSettings()
_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty")

# Range the app allows for each field, inclusive; the dialog's spin boxes use the same bounds, so
# a value the dialog can produce is always one from_dict() keeps.
LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.05, 1.0),
    "top_k": (0, 200),
    "max_tokens": (16, 8192),
    "context_length": (0, 131072),
    "repetition_penalty": (1.0, 2.0),
}


def _problem(name: str, value: Any, default: Any) -> str | None:
    """Why ``value`` can't be field ``name`` (one line naming it), or None when it can."""
    kind = type(default)  # every field has a default of its own type
    if name == "documents":
        if not isinstance(value, str):
            return f"documents must be a collection name or empty (got {value!r})"
        try:
            if value:
                check_collection_name(value)
        except ConfigError as error:
            return str(error)
        return None
    if name in _SAMPLING_FIELDS:
        try:
            SamplingSettings(**{name: value})  # the engine's rule: type and valid values
        except ConfigError as error:
            return str(error)
    # bool is an int subclass, but `"max_tokens": true` in a stored dict is a mistake.
    elif isinstance(value, bool) or not isinstance(value, kind):
        return f"{name} must be a {kind.__name__} (got {value!r}); e.g. {default!r}"
    low, high = LIMITS[name]
    if not low <= value <= high:
        return (f"{name} must be a {kind.__name__} from {low:g} to {high:g} (got {value!r}); "
                f"e.g. {default!r}")
    return None


@dataclass(frozen=True)
class ChatSettings:
    """How one conversation generates; creating one checks every value.

    Sampling values must be valid for the engine (:class:`SamplingSettings`, whose defaults they
    take) and inside the app's ``LIMITS``.

    Raises:
        ConfigError: A value is of the wrong type or out of range; the message names it.
    """

    temperature: float = _ENGINE.temperature  # 0 = greedy; higher = more varied answers
    top_p: float = _ENGINE.top_p  # nucleus mass kept; 1.0 = off
    top_k: int = _ENGINE.top_k  # most likely tokens kept; 0 = off
    max_tokens: int = CHAT_MAX_TOKENS  # longest answer, in tokens
    context_length: int = 0  # prompt + answer budget in tokens; 0 = the model's own
    repetition_penalty: float = _ENGINE.repetition_penalty  # > 1 discourages repeats; 1.0 = off
    # The document collection answers come from ("" = none: the model answers by itself).
    documents: str = ""

    def __post_init__(self) -> None:
        for spec in fields(self):
            problem = _problem(spec.name, getattr(self, spec.name), spec.default)
            if problem is not None:
                raise ConfigError(problem)

    def to_dict(self) -> dict[str, Any]:
        """The plain-JSON form the history stores."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ChatSettings:
        """Reads a stored dict; a missing, mistyped or out-of-range field gets its default.

        Unknown keys are ignored, and anything that is not a dict gives the defaults.
        """
        if not isinstance(data, dict):
            return cls()
        values: dict[str, Any] = {}
        for spec in fields(cls):
            value: Any = data.get(spec.name)
            if _problem(spec.name, value, spec.default) is None:
                # A stored 1 for a float field is fine; keep float fields floats.
                values[spec.name] = float(value) if type(spec.default) is float else value
        return cls(**values)

    def sampling(self) -> SamplingSettings:
        """The engine's sampling values for these settings (min-p and seed stay default)."""
        return SamplingSettings(temperature=self.temperature, top_k=self.top_k,
                                top_p=self.top_p, repetition_penalty=self.repetition_penalty)


class ChatSettingsDialog(QDialog):
    """Edits a :class:`ChatSettings`; ``value()`` gives the edited one after OK."""

    def __init__(self, settings: ChatSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Chat settings"))
        self.temperature = self._double("temperature", 0.05)
        self.temperature.setToolTip(self.tr("0 always picks the most likely word; higher "
                                            "values give more varied answers."))
        self.top_p = self._double("top_p", 0.05)
        self.top_p.setToolTip(self.tr("Only the most likely words that together reach this "
                                      "probability are considered; 1 turns it off."))
        self.top_k = self._int("top_k", 5)
        self.top_k.setSpecialValueText(self.tr("Off"))
        self.top_k.setToolTip(self.tr("Only this many of the most likely words are "
                                      "considered."))
        self.max_tokens = self._int("max_tokens", 64)
        self.max_tokens.setToolTip(self.tr("The longest answer, in tokens."))
        self.context_length = self._int("context_length", 1024)
        self.context_length.setSpecialValueText(self.tr("Model default"))
        self.context_length.setToolTip(self.tr("How many tokens of the conversation the model "
                                               "sees; older messages are left out beyond it."))
        self.repetition_penalty = self._double("repetition_penalty", 0.05)
        self.repetition_penalty.setToolTip(self.tr("Above 1 discourages repeating the same "
                                                   "words; 1 turns it off."))
        form = QFormLayout()
        form.addRow(self.tr("Temperature"), self.temperature)
        form.addRow(self.tr("Top-p"), self.top_p)
        form.addRow(self.tr("Top-k"), self.top_k)
        form.addRow(self.tr("Maximum answer length"), self.max_tokens)
        form.addRow(self.tr("Context length"), self.context_length)
        form.addRow(self.tr("Repetition penalty"), self.repetition_penalty)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.reset_button = QPushButton(self.tr("Reset to defaults"))
        self.buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.reset_button.clicked.connect(lambda: self.set_value(ChatSettings()))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._shown = settings or ChatSettings()  # what value() keeps of fields not shown here
        self.set_value(self._shown)

    def _double(self, name: str, step: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(2)
        box.setRange(*LIMITS[name])
        box.setSingleStep(step)
        return box

    def _int(self, name: str, step: int) -> QSpinBox:
        box = QSpinBox()
        low, high = LIMITS[name]
        box.setRange(int(low), int(high))
        box.setSingleStep(step)
        return box

    def set_value(self, settings: ChatSettings) -> None:
        """Shows ``settings`` in the fields."""
        self.temperature.setValue(settings.temperature)
        self.top_p.setValue(settings.top_p)
        self.top_k.setValue(settings.top_k)
        self.max_tokens.setValue(settings.max_tokens)
        self.context_length.setValue(settings.context_length)
        self.repetition_penalty.setValue(settings.repetition_penalty)

    def value(self) -> ChatSettings:
        """The settings the fields show."""
        # round(): a spin box shows 2 decimals but may hold 0.7000000000000001 after steps.
        return ChatSettings(temperature=round(self.temperature.value(), 2),
                            top_p=round(self.top_p.value(), 2),
                            top_k=self.top_k.value(),
                            max_tokens=self.max_tokens.value(),
                            context_length=self.context_length.value(),
                            repetition_penalty=round(self.repetition_penalty.value(), 2),
                            documents=self._shown.documents)

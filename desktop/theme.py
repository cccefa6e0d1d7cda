"""Light and dark themes: follow the system's colour scheme, or the user's manual choice.

Fusion is used everywhere because it honours a custom palette on every platform (the native
Windows and macOS styles partly ignore it), so both themes look the same wherever they run.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

Role = QPalette.ColorRole
Group = QPalette.ColorGroup

_DARK = {
    Role.Window: "#202124", Role.WindowText: "#e8eaed", Role.Base: "#17181a",
    Role.AlternateBase: "#26282b", Role.ToolTipBase: "#2b2d31", Role.ToolTipText: "#e8eaed",
    Role.PlaceholderText: "#8a8f98", Role.Text: "#e8eaed", Role.Button: "#2b2d31",
    Role.ButtonText: "#e8eaed", Role.BrightText: "#ff6b6b", Role.Link: "#8ab4f8",
    Role.Highlight: "#3d6fb6", Role.HighlightedText: "#ffffff", Role.Mid: "#3c4043",
    Role.Dark: "#111214", Role.Light: "#3c4043", Role.Midlight: "#313336", Role.Shadow: "#000000",
}
_DARK_DISABLED = {Role.WindowText: "#6f7378", Role.Text: "#6f7378", Role.ButtonText: "#6f7378"}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in _DARK.items():
        palette.setColor(role, QColor(color))
    for role, color in _DARK_DISABLED.items():
        palette.setColor(Group.Disabled, role, QColor(color))
    return palette


def system_prefers_dark(app: QApplication) -> bool:
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def is_dark(app: QApplication, choice: str) -> bool:
    return choice == "dark" or (choice == "system" and system_prefers_dark(app))


def apply_theme(app: QApplication, choice: str) -> bool:
    """Applies "system", "light" or "dark"; returns whether the result is dark."""
    app.setStyle("Fusion")
    dark = is_dark(app, choice)
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    return dark

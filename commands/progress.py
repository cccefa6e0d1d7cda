"""Progress on stderr for long CLI commands (imports, pulls, summaries)."""

from __future__ import annotations

import json
import sys


class ProgressPrinter:
    """A one-line progress bar on stderr per stage; with ``json_lines``, one JSON object per
    change (``{"stage", "done", "total"}``) for front ends such as the desktop app."""

    WIDTH = 24

    def __init__(self, json_lines: bool = False) -> None:
        self.last = ""
        self.json_lines = json_lines

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if self.json_lines:
            key = f"{stage}:{percent}"
            if key != self.last:
                print(json.dumps({"stage": stage, "done": done, "total": total}),
                      file=sys.stderr, flush=True)
                self.last = key
            return
        if not sys.stderr.isatty():  # a log file gets one line per stage, not every step
            if done >= total:
                print(f"{stage}: done", file=sys.stderr)
            return
        filled = self.WIDTH * percent // 100
        count = f" {done}/{total}" if total <= 1000 else ""  # parts, not bytes
        line = f"\r{stage} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}%{count}"
        if line != self.last:
            sys.stderr.write(line + ("\n" if done >= total else ""))
            sys.stderr.flush()
            self.last = line

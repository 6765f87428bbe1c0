"""The in-process Hugging Face ``transformers`` backend (CPU by default).

It loads a Hugging Face model directory or a GGUF file; a GGUF file is converted once, its
tokenizer repaired (:mod:`harness.backends.gguf`). Float32 linear layers on CPU run through
oneDNN (:mod:`harness.backends.onednn`); packed scoring lays a prompt and the trie of its
continuations out as one sequence, and a prefix store reuses the key/value cache of the
longest prefix a prompt shares with recent ones (:mod:`harness.backends.prefix`).
"""

from __future__ import annotations

import copy
import gc
import inspect
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.backends.base import (
    BackendError,
    ContinuationScore,
    GenerateOptions,
    Reply,
    MissingDependencyError,
    ModelInfo,
    ScoreRequest,
    TokenCounter,
)
from harness.backends.rendering import CONVERSION_VERSION, Renderer, converted_dir
from harness.models import ModelSource, resolve_model, sha256_file

try:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
except ImportError as exc:  # pragma: no cover - both are core dependencies
    raise MissingDependencyError(
        f"the transformers backend needs torch and transformers ({exc}): pip install torch transformers"
    ) from exc

from harness.backends.gguf import cached_conversion, load_directory_tokenizer, model_dir
from harness.backends.onednn import LOGIT_BUDGET, logsumexp_rows, use_onednn_linears
from harness.backends.prefix import PREFIX_ENTRIES, PrefixStore, TrieLayout, additive_mask, cache_of

# ``converted_dir`` and ``model_dir`` are answered here too, where callers have long found them.
__all__ = ["CONVERSION_VERSION", "DTYPES", "LINEAR_LAYERS", "PREFIX_CACHE", "SCORING", "TokenLogprob", "TransformersBackend",
           "converted_dir", "model_dir"]


@dataclass(frozen=True)
class TokenLogprob:
    """One token of a scored text (what ``zso serve`` echoes)."""

    text: str
    offset: int
    logprob: float | None


#: Accepted values of ``dtype``.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}

#: Accepted values of ``scoring``: the prompt and a trie of the continuations as one packed
#: sequence with a tree attention mask, or the prompt's cache repeated per continuation.
SCORING = ("packed", "cached")

#: Accepted values of ``prefix_cache``: reuse the key/value cache of the longest token
#: prefix a prompt shares with recent ones (packed scoring and generation), or not.
PREFIX_CACHE = ("on", "off")

#: Accepted values of ``linear_layers``: float32 linear layers on CPU through oneDNN where
#: it runs (:func:`use_onednn_linears`), or torch's own ``F.linear`` everywhere.
LINEAR_LAYERS = ("onednn", "torch")

#: Prompts per packed scoring pass with ``prompt_batch="auto"`` off the CPU (on the CPU:
#: one, since a prompt's matrix products already fill its cores).
_GPU_PROMPT_BATCH = 16

log = logging.getLogger(__name__)


def _load_dir_sha(directory: Path) -> str | None:
    """sha256 of a model directory's weights when they are one file."""
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    return sha256_file(files[0]) if len(files) == 1 else None


class TransformersBackend:
    """A causal language model run in this process with ``transformers``.

    ``model`` is an embedded name (see :mod:`harness.models`), a Hugging Face model
    directory or a ``.gguf`` file. ``dtype`` is ``"float32"`` or ``"bfloat16"``;
    ``threads`` sets ``torch.set_num_threads`` (for the whole process); ``device`` is a
    torch device string. ``scoring`` is one of :data:`SCORING` (see :meth:`score`);
    ``prefix_cache`` is one of :data:`PREFIX_CACHE`: with ``"on"`` the key/value cache of
    the last few prompts (and generated replies) is kept, and a later prompt computes only
    its tokens after the longest prefix of token ids it shares with one of them (a chat
    template's system turn, a game's rules, a retry's first attempt). ``prompt_batch``
    prompts are scored in one packed pass, right-padded (``"auto"``: 1 on CPU, 16 on a GPU;
    a batch runs whole prompts, without the prefix cache). ``linear_layers`` is
    one of :data:`LINEAR_LAYERS`: with ``"onednn"`` float32 linear layers on CPU run through
    oneDNN (:func:`use_onednn_linears`). An unknown name raises
    :class:`~harness.models.UnknownModelError`, a missing weights package
    :class:`~harness.backends.base.MissingDependencyError`, and a model that cannot be
    converted or loaded :class:`~harness.backends.base.BackendError`.

    Attributes: ``source`` (the resolved :class:`~harness.models.ModelSource`),
    ``model`` and ``tokenizer`` (the loaded transformers objects), ``weights_sha256``,
    ``converted`` (the cache directory of a GGUF model), ``conversion`` (what that
    conversion recorded, tokenizer repairs included), ``load_seconds``, and the counters
    ``prefilled_tokens`` (prompt tokens run through the model by ``score`` and ``generate``),
    ``reused_tokens`` (prompt tokens taken from the prefix cache instead), and, for packed
    scoring, ``trie_tokens`` (continuation-trie nodes run through the model) and
    ``head_rows`` (positions the LM head normalised); ``onednn_linears`` counts the linear
    layers routed through oneDNN (:func:`use_onednn_linears`). ``prefix_store`` is the
    :class:`~harness.backends.prefix.PrefixStore` behind ``prefix_cache="on"``, ``eos_ids``
    the token ids that end a reply, and ``plain_head`` the answer of :meth:`head_is_plain`
    (None until first asked).
    """

    def __init__(
        self, model: str, dtype: str = "float32", threads: int | None = None, device: str = "cpu",
        scoring: str = "packed", prefix_cache: str = "on", linear_layers: str = "onednn",
        prompt_batch: int | str = "auto",
    ):
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        if scoring not in SCORING:
            raise ValueError(f"unknown scoring {scoring!r}; choose one of: {', '.join(SCORING)}")
        self.scoring = scoring
        if prefix_cache not in PREFIX_CACHE:
            raise ValueError(f"unknown prefix_cache {prefix_cache!r}; choose one of: {', '.join(PREFIX_CACHE)}")
        self.prefix_cache = prefix_cache
        if linear_layers not in LINEAR_LAYERS:
            raise ValueError(f"unknown linear_layers {linear_layers!r}; choose one of: {', '.join(LINEAR_LAYERS)}")
        self.prefix_store = PrefixStore(PREFIX_ENTRIES)
        #: Tokens read (prompts, and continuations scored) and written (replies), for usage per step.
        self.token_usage = TokenCounter()
        self.prefilled_tokens = 0
        self.reused_tokens = 0
        self.trie_tokens = 0
        self.head_rows = 0
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, not {threads}")
            torch.set_num_threads(threads)
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"bad device {device!r}: {exc}") from None
        self.dtype = dtype
        if prompt_batch == "auto":
            prompt_batch = 1 if self.device.type == "cpu" else _GPU_PROMPT_BATCH
        if not isinstance(prompt_batch, int) or isinstance(prompt_batch, bool) or prompt_batch < 1:
            raise ValueError(f"prompt_batch must be 'auto' or a whole number of at least 1, not {prompt_batch!r}")
        self.prompt_batch = prompt_batch
        self.source: ModelSource = resolve_model(model)
        start = time.perf_counter()
        self.weights_sha256: str | None = None
        self.converted: Path | None = None
        self.conversion: dict[str, Any] = {}
        path = self.source.path
        try:
            if self.source.format == "gguf":
                self.converted, self.weights_sha256, self.conversion = cached_conversion(path)
                directory = self.converted
            else:
                directory = path
            self.tokenizer, notes = load_directory_tokenizer(directory)
            if notes and not self.conversion:
                self.conversion = {"tokenizer_fixes": notes}
            self.model = AutoModelForCausalLM.from_pretrained(
                str(directory), dtype=DTYPES[dtype], local_files_only=True
            )
            self.model.to(self.device).eval()
            self.onednn_linears = use_onednn_linears(self.model) if linear_layers == "onednn" else 0
            if self.source.format == "hf":
                self.weights_sha256 = _load_dir_sha(path)
        except MissingDependencyError:
            raise
        except Exception as exc:
            raise BackendError(f"could not load model {str(path)!r}: {type(exc).__name__}: {exc}") from exc
        self.load_seconds = time.perf_counter() - start

        tok = self.tokenizer
        #: Prompt rendering and tokenization, shared with the other backends.
        self.renderer = Renderer.of_tokenizer(tok, source=str(directory))
        self._prefix_ids: list[int] = self.renderer.prefix_ids
        self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        eos: set[int] = set()
        if tok.eos_token_id is not None:
            eos.add(int(tok.eos_token_id))
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif isinstance(gen_eos, (list, tuple)):
            eos.update(int(i) for i in gen_eos)
        self.eos_ids = eos
        self._vocab = int(self.model.get_output_embeddings().weight.shape[0])
        params = inspect.signature(self.model.forward).parameters
        self._accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._accepts = set(params)
        # Older architectures (GPT-Neo, Bloom...) compute logits for every position.
        self._keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        self.plain_head: bool | None = None  # whether logits are exactly hidden @ head.T (checked on first use)

    def forward(self, logits_to_keep: int | torch.Tensor = 0, **kwargs: Any) -> Any:
        """Call the model with the arguments its ``forward`` takes (``logits_to_keep`` where it has one)."""
        if not self._accepts_any:
            kwargs = {k: v for k, v in kwargs.items() if k in self._accepts}
        if self._keep and (isinstance(logits_to_keep, torch.Tensor) or logits_to_keep):
            kwargs[self._keep] = logits_to_keep
        return self.model(**kwargs)

    # -- LM head -----------------------------------------------------------------------

    def head_is_plain(self) -> bool:
        """Whether the model's logits are its output embeddings times the last hidden state.

        True for most causal LMs (Llama, Gemma 3, Qwen...); False where the forward also
        scales or soft-caps them (Gemma 2, Cohere, Granite) or has no ``get_decoder``.
        Checked once, numerically, on a few tokens: packed scoring then runs the decoder
        and normalises with :func:`~harness.backends.onednn.logsumexp_rows` instead of materialising the logits.
        """
        if self.plain_head is None:
            self.plain_head = False
            head = self.model.get_output_embeddings()
            decoder = getattr(self.model, "get_decoder", lambda: None)()
            if decoder is not None and getattr(head, "bias", None) is None and head.weight.dim() == 2:
                ids = torch.tensor([(self._prefix_ids + self.encode("The cat sat on"))[-4:]], device=self.device)
                try:
                    with torch.inference_mode():
                        want = self.forward(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
                        hidden = decoder(input_ids=ids).last_hidden_state[0, -1:]
                        got = (head.weight @ hidden.t())[:, 0].float()
                    self.plain_head = bool(torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())))
                except Exception as exc:  # an architecture this path does not know: use the model's own logits
                    log.debug("packed scoring keeps the model's logits: %s", exc)
        return self.plain_head

    # -- prefix cache --------------------------------------------------------------------

    def _reusable(self, ids: list[int]) -> tuple[int, Any]:
        """Leading tokens of prompt ``ids`` whose cache is stored (never the last), and a cache holding them.

        With ``prefix_cache="off"``: none, and an empty cache. Counts the prompt's tokens.
        """
        n, kv = self.prefix_store.match(ids, len(ids) - 1) if self.prefix_cache == "on" else (0, None)
        self.reused_tokens += n
        self.prefilled_tokens += len(ids) - n
        return n, cache_of(kv or [], n)

    def _remember(self, ids: list[int], cache: Any, row: int = 0, start: int = 0) -> None:
        """Store the cache of ``ids``: positions ``start...`` of batch row ``row`` of ``cache``."""
        if self.prefix_cache != "on":
            return
        end = start + len(ids)
        assert cache.get_seq_length() >= end, (cache.get_seq_length(), end)
        self.prefix_store.add(ids, [(layer.keys[row : row + 1, :, start:end], layer.values[row : row + 1, :, start:end])
                              for layer in cache.layers])

    # -- tokens ------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: the tokenizer's BOS first, unless the text starts with it."""
        return self.renderer.encode(text)

    def continuation_ids(self, prompt: str, continuation: str, prompt_ids: list[int] | None = None) -> list[int]:
        """The tokens ``continuation`` takes after ``prompt`` (:meth:`Renderer.continuation`)."""
        return list(self.renderer.continuation(prompt, continuation, prompt_ids).ids)

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of a formatted prompt (:meth:`encode`); an empty prompt is the BOS alone."""
        ids = self.encode(prompt)
        if not ids and self.tokenizer.bos_token_id is not None:
            ids = [int(self.tokenizer.bos_token_id)]  # an empty prompt: start from BOS
        if not ids:
            raise ValueError("the prompt is empty and the tokenizer has no BOS token to start from")
        return ids

    def token_logprobs(self, text: str) -> list[TokenLogprob]:
        """Each token of ``text`` with its character offset and log-probability.

        The first token has no log-probability (``None``). A BOS that the tokenizer adds
        in front of ``text`` is not reported. Offsets come from decoding the token prefix,
        so they are exact for text that decodes back to itself.
        """
        ids = self.prompt_ids(text)
        added = 1 if self._prefix_ids and ids[: len(self._prefix_ids)] == self._prefix_ids and not (
            self.tokenizer.bos_token and text.startswith(self.tokenizer.bos_token)) else 0
        return self._token_logprobs(ids, added)

    def ids_logprobs(self, ids: Sequence[int]) -> list[TokenLogprob]:
        """:meth:`token_logprobs` for a text given as token ids (nothing is added in front).

        Raises ``ValueError`` for an empty list or an id outside the vocabulary.
        """
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError("no token ids to score")
        bad = [i for i in ids if not 0 <= i < self._vocab]
        if bad:
            raise ValueError(f"token ids outside the vocabulary (0 to {self._vocab - 1}): {bad[:5]}")
        return self._token_logprobs(ids, 0)

    def _token_logprobs(self, ids: list[int], added: int) -> list[TokenLogprob]:
        """Tokens ``added...`` of ``ids`` with their offsets and log-probabilities."""
        with torch.inference_mode():
            logits = self.forward(input_ids=torch.tensor([ids], device=self.device)).logits[0]
            targets = torch.tensor(ids[1:], device=self.device)
            picked = logits[:-1].float()
            lps = (picked.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(picked, dim=-1)).tolist()
        tokens = []
        for i in range(added, len(ids)):
            offset = len(self.tokenizer.decode(ids[added:i], skip_special_tokens=False, clean_up_tokenization_spaces=False))
            piece = self.tokenizer.decode([ids[i]], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            tokens.append(TokenLogprob(piece, offset, None if i == 0 else float(lps[i - 1])))
        return tokens

    # -- Backend -----------------------------------------------------------------------

    def info(self) -> ModelInfo:
        """Name, source, weights digest, and dtype / threads / parameter count."""
        details: dict[str, Any] = {
            "dtype": self.dtype,
            "threads": torch.get_num_threads(),
            "device": str(self.device),
            "scoring": self.scoring,
            "prefix_cache": self.prefix_cache,
            "prompt_batch": self.prompt_batch,
            "linear_layers": "onednn" if self.onednn_linears else "torch",
            "n_params": sum(p.numel() for p in self.model.parameters()),
            "format": self.source.format,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }
        if self.converted is not None:
            details["converted"] = str(self.converted)
        if self.conversion.get("tokenizer_fixes"):
            details["tokenizer_fixes"] = list(self.conversion["tokenizer_fixes"])
        return ModelInfo(
            name=self.source.name,
            backend="transformers",
            source=str(self.source.path),
            weights_sha256=self.weights_sha256,
            chat_template=bool(self.tokenizer.chat_template),
            details=details,
        )

    def format_prompt(self, text: str) -> str:
        """The chat template with an open assistant turn, or ``text`` itself for a base model."""
        return self.renderer.format_prompt(text)

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Sum of token log-probabilities of each continuation after its prompt.

        ``scoring="packed"`` (the default): the prompt and a trie of the continuations'
        tokens run as one sequence; each trie node sits at position ``prompt length +
        depth`` and attends to the prompt and its own ancestors only; only nodes with
        children run (a leaf's token is read from its parent's row), and the LM head runs
        only at the prompt's last position and at those nodes, one vocabulary slice at a
        time where the model's logits are plainly its head times the hidden state.
        ``scoring="cached"``: the prompt runs once and its cache is repeated for the
        continuations, which run as one right-padded batch. Both keep at most
        ``LOGIT_BUDGET`` logits at once and agree to float rounding. Packed scoring with
        ``prefix_cache="on"`` runs only the prompt's tokens after its longest stored prefix.
        """
        with torch.inference_mode():
            prepared = [self._tokens_of(r) for r in requests]
            self.token_usage.add(sum(len(p) + sum(map(len, c)) for p, c in prepared))
            scores: list[list[ContinuationScore] | None] = [None] * len(prepared)
            if self.prompt_batch > 1 and self.scoring == "packed" and self.head_is_plain():
                batchable = [i for i, (p, c) in enumerate(prepared) if c and self._packable(len(p), max(map(len, c)))
                             and len(self._pass_groups(c)) == 1]
                for start in range(0, len(batchable), self.prompt_batch):
                    chunk = batchable[start: start + self.prompt_batch]
                    for i, result in zip(chunk, self._packed_batch([prepared[i] for i in chunk])):
                        scores[i] = result
            return [s if s is not None else self._score_tokens(*prepared[i]) for i, s in enumerate(scores)]

    def _tokens_of(self, request: ScoreRequest) -> tuple[list[int], list[list[int]]]:
        """The request's prompt ids and each continuation's ids (none without continuations)."""
        if not request.continuations:
            return [], []
        prompt_ids = self.prompt_ids(request.prompt)
        return prompt_ids, [self.continuation_ids(request.prompt, c, prompt_ids) for c in request.continuations]

    def _score_tokens(self, prompt_ids: list[int], conts: list[list[int]]) -> list[ContinuationScore]:
        if not conts:
            return []
        if self.scoring == "packed" and self._packable(len(prompt_ids), max(len(c) for c in conts)):
            return self._score_packed(prompt_ids, conts)
        return self._score_cached(prompt_ids, conts)

    def _packable(self, n_prompt: int, depth: int) -> bool:
        """Whether a custom 4D mask gives the model's own attention here."""
        if self._keep != "logits_to_keep" or "position_ids" not in self._accepts:
            return False
        if getattr(self.model.config, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
            return False
        window = getattr(self.model.config, "sliding_window", None)
        # A custom mask replaces the sliding-window one: fine while every key is in the window.
        return not window or n_prompt + depth <= int(window)

    def _pass_groups(self, conts: list[list[int]]) -> list[list[int]]:
        """Continuations (by index) per packed pass: at most ``LOGIT_BUDGET`` logits of LM-head rows each."""
        groups: list[list[int]] = [[]]
        heads, seen = 1, set()  # LM-head rows of the current group: the prompt's last position + inner nodes
        limit = max(1, LOGIT_BUDGET // self._vocab)
        for i, c in enumerate(conts):
            inner = {tuple(c[:k]) for k in range(1, len(c))} - seen
            if groups[-1] and heads + len(inner) > limit:
                groups.append([])
                heads, seen = 1, set()
                inner = {tuple(c[:k]) for k in range(1, len(c))}
            groups[-1].append(i)
            seen |= inner
            heads += len(inner)
        return groups

    def _score_packed(self, prompt_ids: list[int], conts: list[list[int]]) -> list[ContinuationScore]:
        """Prompt + trie of continuations in one forward pass per group (see :meth:`score`)."""
        totals: list[float] = [0.0] * len(conts)
        for group in self._pass_groups(conts):
            for i, value in zip(group, self._packed_forward(prompt_ids, [conts[i] for i in group])):
                totals[i] = value
        return [ContinuationScore(logprob=t, n_tokens=len(c)) for t, c in zip(totals, conts)]

    def _packed_forward(self, prompt_ids: list[int], conts: list[list[int]]) -> list[float]:
        lay = TrieLayout.of(prompt_ids, conts)
        dev = self.device
        self.trie_tokens += lay.fed
        self.head_rows += len(lay.source)
        # The first `reused` prompt positions come from the prefix cache: only the rest run.
        reused, past = self._reusable(prompt_ids)
        keep = self.prefix_cache == "on"
        inputs = dict(
            input_ids=torch.tensor([lay.sequence[reused:]], device=dev),
            attention_mask=additive_mask(lay.allowed[reused:], self.model.dtype)[None, None].to(dev),
            position_ids=torch.tensor([lay.positions[reused:]], device=dev),
            past_key_values=past if keep else None,
            use_cache=keep,
        )
        keep_rows = torch.tensor([pos - reused for pos in lay.source], device=dev)
        if self.head_is_plain():
            # The decoder's hidden states, and the head applied one vocabulary slice at a
            # time: the node logits and each row's normaliser, never all the logits at once.
            node_lp = self._node_logprobs([self.model.get_decoder()(**inputs).last_hidden_state[0, keep_rows]], [lay])[0]
        else:
            logits = self.forward(**inputs, logits_to_keep=keep_rows).logits[0].float()
            rows, targets = torch.tensor(lay.rows, device=dev), torch.tensor(lay.targets, device=dev)
            node_lp = (logits[rows, targets] - torch.logsumexp(logits, dim=-1)[rows]).double().tolist()
        if keep:  # the prompt's positions come first, and attend to the prompt only
            self._remember(prompt_ids, past)
        return [sum(node_lp[n] for n in path) for path in lay.paths]

    def _node_logprobs(self, hidden: list[torch.Tensor], lays: list[TrieLayout]) -> list[list[float]]:
        """Each trie node's log-probability, from the hidden states at each layout's head rows.

        The head runs once over all the layouts' rows, one vocabulary slice at a time.
        """
        dev = self.device
        weight = self.model.get_output_embeddings().weight
        offsets = [0]
        for lay in lays:
            offsets.append(offsets[-1] + len(lay.source))
        rows = torch.tensor([offsets[i] + r for i, lay in enumerate(lays) for r in lay.rows], device=dev)
        targets = torch.tensor([t for lay in lays for t in lay.targets], device=dev)
        every = torch.cat(hidden)
        picked = (every[rows] * weight[targets]).sum(-1).float()
        normaliser = logsumexp_rows(weight, every, onednn=self.onednn_linears > 0, budget=LOGIT_BUDGET)
        flat = (picked - normaliser[rows]).double().tolist()
        out, at = [], 0
        for lay in lays:
            out.append(flat[at: at + len(lay.rows)])
            at += len(lay.rows)
        return out

    def _packed_batch(self, items: list[tuple[list[int], list[list[int]]]]) -> list[list[ContinuationScore]]:
        """Several prompts' packed sequences, right-padded into one batch (``prompt_batch``).

        Each row keeps its own tree mask; a pad position attends only to itself. No prefix
        cache: whole prompts run. Needs a plain head (see :meth:`head_is_plain`).
        """
        lays = [TrieLayout.of(prompt_ids, conts) for prompt_ids, conts in items]
        dev, dtype = self.device, self.model.dtype
        width = max(len(lay.sequence) for lay in lays)
        ids = torch.full((len(lays), width), self._pad_id, dtype=torch.long)
        positions = torch.zeros((len(lays), width), dtype=torch.long)
        allowed = torch.eye(width, dtype=torch.bool).repeat(len(lays), 1, 1)
        for b, lay in enumerate(lays):
            n = len(lay.sequence)
            ids[b, :n] = torch.tensor(lay.sequence)
            positions[b, :n] = torch.tensor(lay.positions)
            allowed[b, :n, :n] = lay.allowed
            self.trie_tokens += lay.fed
            self.head_rows += len(lay.source)
            self.prefilled_tokens += lay.n_prompt
        mask = additive_mask(allowed, dtype).unsqueeze(1)
        hidden = self.model.get_decoder()(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                                          position_ids=positions.to(dev), use_cache=False).last_hidden_state
        rows = [hidden[b, torch.tensor(lay.source, device=dev)] for b, lay in enumerate(lays)]
        node_lps = self._node_logprobs(rows, lays)
        return [[ContinuationScore(logprob=sum(lp[n] for n in path), n_tokens=len(c)) for path, c in zip(lay.paths, conts)]
                for lay, lp, (_, conts) in zip(lays, node_lps, items)]

    def _score_cached(self, prompt_ids: list[int], conts: list[list[int]]) -> list[ContinuationScore]:
        out = self.forward(
            input_ids=torch.tensor([prompt_ids], device=self.device), use_cache=True, logits_to_keep=1
        )
        first = out.logits[0, -1].float()
        first_lp = first - torch.logsumexp(first, dim=-1)
        totals = [float(first_lp[c[0]]) for c in conts]
        rows = [i for i, c in enumerate(conts) if len(c) > 1]
        if rows:
            cache = out.past_key_values
            n_prompt = len(prompt_ids)
            width = max(len(conts[i]) for i in rows) - 1
            per_chunk = max(1, LOGIT_BUDGET // (width * self._vocab))
            for start in range(0, len(rows), per_chunk):
                chunk = rows[start : start + per_chunk]
                last = start + per_chunk >= len(rows)
                kv = cache if last else copy.deepcopy(cache)
                sums = self._score_chunk([conts[i] for i in chunk], kv, n_prompt, width)
                for i, s in zip(chunk, sums):
                    totals[i] += s
        return [ContinuationScore(logprob=t, n_tokens=len(c)) for t, c in zip(totals, conts)]

    def _score_chunk(self, conts: list[list[int]], cache: Any, n_prompt: int, width: int) -> list[float]:
        """Log-probability of tokens 2.. of each continuation, given the prompt's cache."""
        n = len(conts)
        dev = self.device
        inputs = torch.full((n, width), self._pad_id, dtype=torch.long, device=dev)
        targets = torch.zeros((n, width), dtype=torch.long, device=dev)
        valid = torch.zeros((n, width), dtype=torch.bool, device=dev)
        for r, c in enumerate(conts):
            k = len(c) - 1
            if k:
                inputs[r, :k] = torch.tensor(c[:-1], device=dev)
                targets[r, :k] = torch.tensor(c[1:], device=dev)
                valid[r, :k] = True
        # Right padding: pads come after every real token, so they change no real one.
        mask = torch.cat([torch.ones((n, n_prompt), dtype=torch.long, device=dev), valid.long()], dim=1)
        positions = torch.arange(n_prompt, n_prompt + width, device=dev)
        if n > 1:
            cache.batch_repeat_interleave(n)
        logits = self.forward(
            input_ids=inputs,
            attention_mask=mask,
            position_ids=positions.unsqueeze(0).expand(n, -1),
            cache_position=positions,
            past_key_values=cache,
            use_cache=True,
        ).logits
        picked = logits[valid]  # (tokens, vocab): continuation positions only
        del logits
        target = targets[valid]
        token_logit = picked.gather(-1, target.unsqueeze(-1)).squeeze(-1).float()
        lp = token_logit - torch.logsumexp(picked.float(), dim=-1)
        row = torch.arange(n, device=dev).unsqueeze(1).expand(n, width)[valid]
        sums = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, row, lp.double())
        return sums.tolist()

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        """Replies to formatted prompts, decoded together as one left-padded batch.

        Greedy when ``options.temperature == 0``, else sampled with a generator seeded
        from ``options.seed``, or one per prompt seeded from ``options.seeds``. A reply ends at EOS, after ``max_new_tokens``, or at the
        first stop string, which is cut off; only the new text is returned, as a
        :class:`~harness.backends.base.Reply` whose ``finish_reason`` says which:
        ``stop`` (EOS or a stop string) or ``length`` (``max_new_tokens`` spent).
        """
        if not prompts:
            return []
        if options.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, not {options.max_new_tokens}")
        if options.temperature < 0:
            raise ValueError(f"temperature must be >= 0, not {options.temperature}")
        if options.max_new_tokens == 0:
            return [Reply("", "length") for _ in prompts]
        with torch.inference_mode():
            return self._generate(prompts, options)

    def _generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[Reply]:
        dev = self.device
        ids = [self.prompt_ids(p) for p in prompts]
        n, width = len(ids), max(len(i) for i in ids)
        inputs = torch.full((n, width), self._pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros((n, width), dtype=torch.long, device=dev)
        for r, row in enumerate(ids):
            inputs[r, width - len(row) :] = torch.tensor(row, device=dev)
            mask[r, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # One generator for the batch, or one per prompt (options.seeds).
        seeds = options.prompt_seeds(n) if options.seeds is not None else [options.seed]
        generators = [torch.Generator(device=dev) for _ in seeds]
        for generator, seed in zip(generators, seeds):
            if seed is None:
                generator.seed()
            else:
                generator.manual_seed(seed)
        stops = tuple(s for s in options.stop if s)
        new: list[list[int]] = [[] for _ in range(n)]
        fed = [0] * n  # new tokens that have run through the model (their keys/values are cached)
        texts = ["" for _ in range(n)]
        done = [False] * n
        if self.prefix_cache == "on":
            last, cache = self._prefill_rows(ids, width)
        else:
            self.prefilled_tokens += sum(map(len, ids))
            out = self.forward(
                input_ids=inputs, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
            )
            last, cache = out.logits[:, -1], out.past_key_values
        for step in range(options.max_new_tokens):
            logits = last.float()
            if options.temperature == 0:
                nxt = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits / options.temperature, dim=-1)
                if len(generators) == 1:
                    nxt = torch.multinomial(probs, 1, generator=generators[0]).squeeze(-1)
                else:  # a row's draws come from its own generator, whatever else is in the batch
                    nxt = torch.cat([torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(generators)])
            chosen = nxt.tolist()
            for r in range(n):
                if done[r]:
                    continue
                if chosen[r] in self.eos_ids:
                    done[r] = True
                    continue
                new[r].append(chosen[r])
                if stops:
                    texts[r] = self.tokenizer.decode(new[r], skip_special_tokens=True, clean_up_tokenization_spaces=False)
                    if any(s in texts[r] for s in stops):
                        done[r] = True
            if all(done) or step == options.max_new_tokens - 1:
                break
            step_ids = torch.tensor(
                [self._pad_id if done[r] else chosen[r] for r in range(n)], device=dev
            ).unsqueeze(1)
            fed = [f if done[r] else f + 1 for r, f in enumerate(fed)]
            mask = torch.cat([mask, torch.ones((n, 1), dtype=torch.long, device=dev)], dim=1)
            positions = positions[:, -1:] + 1
            last = self.forward(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1]
        for r, row in enumerate(ids):  # each prompt with its reply so far: where a retry starts
            self._remember(row + new[r][: fed[r]], cache, r, width - len(row))
        replies = []
        for r in range(n):
            text = self.tokenizer.decode(new[r], skip_special_tokens=True, clean_up_tokenization_spaces=False)
            cut = min((text.find(s) for s in stops if s in text), default=-1)
            replies.append(Reply(text[:cut] if cut >= 0 else text, "stop" if done[r] else "length"))
        self.token_usage.add(sum(map(len, ids)), sum(map(len, new)))
        return replies

    def _prefill_rows(self, ids: list[list[int]], width: int) -> tuple[torch.Tensor, Any]:
        """Each prompt run alone from its longest stored prefix, then left-padded to ``width``.

        Answers the last position's logits of each row and one batch cache, as the
        left-padded batch prefill of ``prefix_cache="off"`` would (pad positions hold zeros,
        masked out).
        """
        last, rows = [], []
        for row in ids:
            reused, past = self._reusable(row)
            last.append(self.forward(
                input_ids=torch.tensor([row[reused:]], device=self.device),
                position_ids=torch.arange(reused, len(row), device=self.device).unsqueeze(0),
                past_key_values=past,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1])
            self._remember(row, past)
            rows.append([(layer.keys, layer.values) for layer in past.layers])
        pad = [(0, 0, width - len(row), 0) for row in ids]
        kv = [tuple(torch.cat([torch.nn.functional.pad(r[i][j], p) for r, p in zip(rows, pad)]) for j in (0, 1))
              for i in range(len(rows[0]))]
        return torch.cat(last), cache_of(kv, width)

    def close(self) -> None:
        """Drop the model and tokenizer."""
        for name in ("model", "tokenizer"):
            if hasattr(self, name):
                delattr(self, name)
        gc.collect()

"""The prefix store and the trie layout of packed scoring, for the in-process backend.

:class:`PrefixStore` keeps the key/value caches of recent token sequences and answers the
longest one a new prompt starts with; :func:`cache_of` turns a stored entry into a
``DynamicCache``. :class:`TrieLayout` lays a prompt and the trie of its continuations out
as one packed sequence with a tree attention mask (:func:`additive_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from transformers import DynamicCache

__all__ = ["KV", "PREFIX_ENTRIES", "PrefixStore", "TrieLayout", "additive_mask", "cache_of", "common_length"]

#: Token sequences whose key/value cache a backend's prefix store keeps (least recently used dropped).
PREFIX_ENTRIES = 8

#: Per layer, the keys and values of one sequence: tensors of shape (1, heads, tokens, dim).
KV = list[tuple[torch.Tensor, torch.Tensor]]


def common_length(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """Length of the common prefix of two token sequences, at most ``limit``."""
    n = min(len(a), len(b), limit)
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class PrefixStore:
    """Key/value caches of recent token sequences, matched on token ids by longest common prefix.

    Keys and values depend only on the tokens before them and their positions, so the
    first ``k`` entries of a stored sequence's cache are those of any sequence that starts
    with the same ``k`` token ids. Entries are views of the tensors of the pass that
    computed them and are never written to (a cache extended from them gets new tensors).
    At most ``size`` sequences; a sequence that is a prefix of a newer one is dropped, then
    the least recently used.
    """

    def __init__(self, size: int):
        self.size = size
        self.entries: list[tuple[tuple[int, ...], KV]] = []  # most recently used last

    def match(self, ids: Sequence[int], limit: int) -> tuple[int, KV | None]:
        """The longest stored prefix of ``ids`` (at most ``limit`` tokens) and its entry's cache."""
        best, found = 0, -1
        for index, (seq, _) in enumerate(self.entries):
            n = common_length(seq, ids, limit)
            if n > best:
                best, found = n, index
        if found < 0:
            return 0, None
        entry = self.entries.pop(found)
        self.entries.append(entry)
        return best, entry[1]

    def add(self, ids: Sequence[int], kv: KV) -> None:
        """Store the cache ``kv`` of ``ids`` as the most recently used entry."""
        key = tuple(ids)
        self.entries = [e for e in self.entries if key[: len(e[0])] != e[0]]
        self.entries.append((key, kv))
        del self.entries[: -self.size]


@dataclass(frozen=True)
class TrieLayout:
    """A prompt and the trie of its continuations' tokens, laid out as one packed sequence.

    ``sequence`` holds the prompt's ids then the token of each trie node that has children
    (a leaf's token is only a target), at ``positions`` prompt length + depth; position
    ``i`` may attend to ``j`` where ``allowed[i, j]`` (the prompt causally, a node the
    prompt and its own ancestors). ``source`` are the sequence positions the LM head reads
    (the prompt's last, then the fed nodes); trie node ``k`` has token ``targets[k]``,
    predicted by head row ``rows[k]``; continuation ``i`` is the nodes ``paths[i]``.
    """

    n_prompt: int
    fed: int
    sequence: list[int]
    positions: list[int]
    allowed: torch.Tensor
    source: list[int]
    rows: list[int]
    targets: list[int]
    paths: list[list[int]]

    @classmethod
    def of(cls, prompt_ids: list[int], conts: list[list[int]]) -> "TrieLayout":
        """The layout of the continuations ``conts`` (token ids) after the prompt ``prompt_ids``."""
        n_prompt = len(prompt_ids)
        node_of: dict[tuple[int, ...], int] = {}
        parents: list[int] = []  # -1: the prompt
        tokens: list[int] = []
        depths: list[int] = []
        paths: list[list[int]] = []
        for c in conts:
            path, parent = [], -1
            for k in range(len(c)):
                key = tuple(c[: k + 1])
                node = node_of.get(key)
                if node is None:
                    node = node_of[key] = len(tokens)
                    parents.append(parent)
                    tokens.append(c[k])
                    depths.append(k)
                path.append(node)
                parent = node
            paths.append(path)
        # Only nodes with children run through the model: a leaf's token is a target, read
        # from its parent's row, and nothing attends to it.
        fed = sorted({p for p in parents if p >= 0})
        slot = {node: n_prompt + i for i, node in enumerate(fed)}  # sequence position of a fed node
        length = n_prompt + len(fed)
        allowed = torch.zeros((length, length), dtype=torch.bool)
        allowed[:n_prompt, :n_prompt] = torch.ones((n_prompt, n_prompt), dtype=torch.bool).tril()
        allowed[n_prompt:, :n_prompt] = True
        for node in fed:
            at = node
            while at >= 0:
                allowed[slot[node], slot[at]] = True
                at = parents[at]
        # Rows of the LM head: the position that predicts each node's token (its parent's).
        source = sorted({n_prompt - 1 if p < 0 else slot[p] for p in parents})
        row_of = {pos: r for r, pos in enumerate(source)}
        return cls(
            n_prompt=n_prompt, fed=len(fed), sequence=prompt_ids + [tokens[n] for n in fed],
            positions=list(range(n_prompt)) + [n_prompt + depths[n] for n in fed], allowed=allowed,
            source=source, rows=[row_of[n_prompt - 1 if p < 0 else slot[p]] for p in parents], targets=tokens,
            paths=paths,
        )


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The attention mask a model adds to its scores: 0 where ``allowed``, the dtype's minimum elsewhere."""
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)


def cache_of(kv: KV, length: int) -> Any:
    """A ``DynamicCache`` holding the first ``length`` positions of ``kv``.

    Its layers hold views of ``kv``, not copies; the pass that extends it concatenates
    (``torch.cat`` in ``DynamicLayer.update``), which is the one copy of the prefix.
    Every layer keeps all its keys (no sliding-window eviction): the attention masks,
    the model's own or a packed one, apply any window.
    """
    cache = DynamicCache()
    for i, (keys, values) in enumerate(kv):
        cache.update(keys[:, :, :0], values[:, :, :0], i)  # creates layer i
        cache.layers[i].keys, cache.layers[i].values = keys[:, :, :length], values[:, :, :length]
    return cache

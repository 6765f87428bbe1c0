"""oneDNN routing of float32 linear layers on CPU, and the LM head normalised one vocabulary slice at a time.

:func:`use_onednn_linears` points a model's plain ``nn.Linear`` layers at :func:`linear`,
which runs ``torch.ops.mkldnn._linear_pointwise`` where it exists and agrees with
``F.linear`` (probed once, at import: :data:`ONEDNN_LINEAR`), and ``F.linear`` elsewhere.
:func:`logsumexp_rows` computes a head's log-normalisers without materialising its logits.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch

__all__ = ["HEAD_SLICE", "LOGIT_BUDGET", "ONEDNN_LINEAR", "linear", "logsumexp_rows", "onednn_runs", "use_onednn_linears"]

log = logging.getLogger(__name__)

#: Most logits (rows x positions x vocabulary) materialised at once: 2**25 floats = 128 MiB in float32.
LOGIT_BUDGET = 1 << 25

#: Vocabulary rows per slice of :func:`logsumexp_rows`.
HEAD_SLICE = 32768


def _onednn_linear_op() -> Any:
    """oneDNN's linear on dense tensors (``torch.ops.mkldnn._linear_pointwise``), or None.

    None where this torch build lacks it, or where it fails or disagrees with ``F.linear``
    on a small product (tried once, at import).
    """
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    gen = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 2, 16, generator=gen), torch.randn(8, 16, generator=gen), torch.randn(8, generator=gen)
    try:
        with torch.no_grad():
            agrees = torch.allclose(op(x, w, b, "none", [], ""), torch.nn.functional.linear(x, w, b), atol=1e-5)
    except Exception as exc:  # a build or CPU this op does not run on: torch's own linear
        log.debug("oneDNN linear unavailable: %s", exc)
        return None
    return op if agrees else None


#: oneDNN's dense linear op, or None where it is missing or disagrees with ``F.linear``.
ONEDNN_LINEAR = _onednn_linear_op()


def onednn_runs(weight: torch.Tensor) -> bool:
    """Whether :func:`linear` runs through oneDNN for ``weight`` (float32, on CPU)."""
    return ONEDNN_LINEAR is not None and weight.device.type == "cpu" and weight.dtype == torch.float32


def linear(weight: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None = None, *, onednn: bool = True) -> torch.Tensor:
    """``x @ weight.T (+ bias)``: through oneDNN on CPU in float32 without autograd, else ``F.linear``.

    On a 2-core CPU oneDNN ran the float32 products of the embedded models' layers, at 1 to
    2048 rows, 0.97x to 1.8x the speed of ``F.linear`` (MKL; faster in 23 of 24 shapes
    timed) and their LM heads 1.6x to 3.5x (one row of Gemma-3-270M's 262k-word head:
    0.028 s against 0.057 s),
    with the same float32 arithmetic (within 1e-5 relative). It takes the weight as it
    is: no copy, no repacking.
    """
    if onednn and onednn_runs(weight) and x.dtype == torch.float32 and not torch.is_grad_enabled():
        return ONEDNN_LINEAR(x, weight, bias, "none", [], "")
    return torch.nn.functional.linear(x, weight, bias)


def use_onednn_linears(model: torch.nn.Module) -> int:
    """Route the model's float32 CPU ``nn.Linear`` layers (LM head included) through :func:`linear`.

    Each layer keeps its weight (tied or not) and only its ``forward`` changes, so the
    model computes the same float32 products, faster. Subclasses of ``nn.Linear``
    (quantised layers) are left alone. Answers how many layers it routed.
    """
    routed = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and onednn_runs(module.weight):
            module.forward = functools.partial(_linear_forward, module)
            routed += 1
    return routed


def _linear_forward(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return linear(module.weight, x, module.bias)


def logsumexp_rows(weight: torch.Tensor, hidden: torch.Tensor, slice_rows: int = HEAD_SLICE, *,
                   onednn: bool = True, budget: int = LOGIT_BUDGET) -> torch.Tensor:
    """``logsumexp(hidden @ weight.T, dim=-1)`` for ``hidden`` [N, D] and ``weight`` [V, D], in float32.

    One slice of the vocabulary at a time (:func:`linear`), so each slice's logits
    are reduced while still in cache and the [N, V] logits never exist: for 36 rows of
    Gemma's 262k-word head on a 2-core CPU, 0.09 s against 0.12 s to 0.14 s for the
    whole product then its logsumexp (``bench/decisions.py``). A slice holds at most
    ``budget`` logits (and at least 1024 vocabulary rows).
    """
    slice_rows = max(1024, min(slice_rows, budget // max(1, hidden.shape[0])))  # at most ``budget`` logits per slice
    parts = [torch.logsumexp(linear(weight[s : s + slice_rows], hidden, onednn=onednn).float(), dim=-1)
             for s in range(0, weight.shape[0], slice_rows)]
    return torch.logsumexp(torch.stack(parts), dim=0)

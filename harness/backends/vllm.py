"""vLLM in-process, for GPU servers.

vLLM pins its own torch and transformers, so it lives in its own environment
(``pip install vllm`` there, then ``pip install --no-deps -e .`` for zso); or serve the
model with ``vllm serve MODEL`` and use ``--backend openai``.

``score`` asks for the prompt log-probabilities of ``prompt + continuation`` token ids
(``prompt_logprobs=0``), so each continuation costs one prefill that vLLM's prefix cache
shares across the continuations of a prompt.
"""

from __future__ import annotations

from typing import Any, Sequence

from harness.backends.base import (
    ContinuationScore, GenerateOptions, MissingDependencyError, ModelInfo, Reply, ScoreRequest, TokenCounter, regroup,
)
from harness.backends.rendering import Renderer

INSTALL_HINT = (
    "the vllm backend needs vLLM, which pins its own torch: install it in a separate environment "
    "(pip install vllm && pip install --no-deps -e .), or run `vllm serve MODEL` and use --backend openai"
)


class VLLMBackend:
    """A model loaded by ``vllm.LLM``; extra options go to its constructor."""

    def __init__(self, model: str, dtype: str = "auto", gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, tensor_parallel_size: int = 1, enable_prefix_caching: bool = True):
        try:
            import vllm
        except ImportError:
            raise MissingDependencyError(INSTALL_HINT) from None
        self._vllm = vllm
        self.model = model
        self.llm = vllm.LLM(
            model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size, enable_prefix_caching=enable_prefix_caching,
        )
        self.tokenizer = self.llm.get_tokenizer()
        #: Prompt rendering and tokenization, shared with the other backends.
        self.renderer = Renderer.of_tokenizer(self.tokenizer, source=model)
        self.options: dict[str, Any] = {"dtype": dtype, "tensor_parallel_size": tensor_parallel_size}
        #: Tokens read and written (prompt and completion tokens of every request).
        self.token_usage = TokenCounter()

    def info(self) -> ModelInfo:
        return ModelInfo(self.model, "vllm", self.model, None, bool(getattr(self.tokenizer, "chat_template", None)),
                         {**self.options, "vllm": self._vllm.__version__})

    def format_prompt(self, text: str) -> str:
        return self.renderer.format_prompt(text)

    def _encode(self, text: str) -> list[int]:
        return self.renderer.encode(text)

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        params = [self._vllm.SamplingParams(
            max_tokens=options.max_new_tokens, temperature=options.temperature, seed=seed,
            stop=list(options.stop) or None,
        ) for seed in options.prompt_seeds(len(prompts))]
        inputs = [{"prompt_token_ids": self._encode(p)} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False) if inputs else []
        self.token_usage.add(sum(len(out.prompt_token_ids) for out in outputs),
                             sum(len(out.outputs[0].token_ids) for out in outputs))
        # vLLM's finish_reason: "stop" (EOS or a stop string), "length" (max_tokens) or "abort".
        return [Reply(out.outputs[0].text, out.outputs[0].finish_reason) for out in outputs]

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        inputs, spans = [], []
        for request in requests:
            prompt_ids = self._encode(request.prompt)
            for cont in request.continuations:
                if not cont:
                    raise ValueError("cannot score an empty continuation")
                full = prompt_ids + list(self.renderer.continuation(request.prompt, cont, prompt_ids).ids)
                inputs.append({"prompt_token_ids": full})
                spans.append((len(prompt_ids), len(full)))
        params = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        outputs = self.llm.generate(inputs, params, use_tqdm=False) if inputs else []
        self.token_usage.add(sum(len(i["prompt_token_ids"]) for i in inputs))
        flat = []
        for out, (start, end) in zip(outputs, spans):
            ids = out.prompt_token_ids
            total = sum(out.prompt_logprobs[i][ids[i]].logprob for i in range(start, end))
            flat.append(ContinuationScore(float(total), end - start))
        return regroup(flat, requests)

    def close(self) -> None:
        del self.llm

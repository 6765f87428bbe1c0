"""TransformersBackend on the two embedded models (real weights, CPU)."""

from __future__ import annotations

import time

import pytest
import torch
import transformers

from harness.backends import gguf, onednn
from harness.backends import transformers as tb
from harness.backends.base import Backend, BackendError, GenerateOptions, ScoreRequest
from harness.backends.prefix import PREFIX_ENTRIES, PrefixStore
from harness.backends.transformers import TransformersBackend

BACKENDS = ["smollm2_backend", "gemma_backend"]

CONTINUATIONS = (" e4", " e2e4", " Nf3", "The knight moves to f3.", " 1. d4 d5 2. c4")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.getfixturevalue(request.param)


def naive_logprob(backend: TransformersBackend, prompt: str, continuation: str) -> float:
    """Prompt and continuation in one forward pass, float64 log_softmax over all positions."""
    p = backend.encode(prompt)
    c = backend.continuation_ids(prompt, continuation)
    with torch.inference_mode():
        logits = backend.model(input_ids=torch.tensor([p + c])).logits[0].double()
    logp = logits.log_softmax(-1)
    return sum(float(logp[len(p) - 1 + k, t]) for k, t in enumerate(c))


# -- arguments -------------------------------------------------------------------------


def test_bad_dtype_lists_the_choices():
    with pytest.raises(ValueError, match="float32, bfloat16"):
        TransformersBackend("smollm2-135m-instruct", dtype="float16")


def test_bad_threads():
    with pytest.raises(ValueError, match="threads"):
        TransformersBackend("smollm2-135m-instruct", threads=0)


def test_load_failure_is_a_backend_error_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSO_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(BackendError, match="broken.gguf"):
        TransformersBackend(str(bad))
    # The failed conversion left nothing behind.
    assert list((tmp_path / "cache" / "converted").iterdir()) == []


def test_interrupted_conversion_leaves_no_cache(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", interrupt)
    target = tmp_path / "converted" / "0123456789abcdef"
    with pytest.raises(KeyboardInterrupt):
        gguf.convert_gguf(tmp_path / "m.gguf", "0123456789abcdef" * 4, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


# -- loading and the conversion cache ----------------------------------------------------


@pytest.mark.model
def test_implements_the_backend_protocol(backend):
    assert isinstance(backend, Backend)
    info = backend.info()
    assert info.backend == "transformers"
    assert info.details["dtype"] == "float32"
    assert info.details["n_params"] > 100_000_000
    assert len(info.weights_sha256) == 64


@pytest.mark.model
@pytest.mark.parametrize("name, fixture", [("smollm2-135m-instruct", "smollm2_backend"), ("gemma3-270m", "gemma_backend")])
def test_converted_cache_is_reused(name, fixture, request, monkeypatch):
    first = request.getfixturevalue(fixture)
    converted = first.converted
    assert converted == tb.converted_dir(first.weights_sha256)
    assert (converted / "zso_conversion.json").is_file()
    assert (converted / "model.safetensors").is_file()
    assert not list(converted.parent.glob(".tmp-*"))

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted the GGUF file again")

    monkeypatch.setattr(gguf, "convert_gguf", no_conversion)
    again = TransformersBackend(name)
    print(f"\n{name}: second load from {converted} in {again.load_seconds:.2f} s")
    assert again.converted == converted
    prompt = again.format_prompt("Hi")
    request_ = ScoreRequest(prompt, (" there", "!"))
    # Both from the whole prompt: the shared fixture may hold a stored prefix of it from
    # earlier tests, which rounds differently in the last float32 digits.
    monkeypatch.setattr(first, "prefix_cache", "off")
    assert again.score([request_]) == first.score([request_])
    again.close()


@pytest.mark.model
def test_loads_a_hugging_face_directory(smollm2_backend):
    hf = TransformersBackend(str(smollm2_backend.converted))
    info = hf.info()
    assert info.details["format"] == "hf" and info.chat_template
    assert len(info.weights_sha256) == 64  # the one model.safetensors
    assert hf.tokenizer.eos_token == "<|im_end|>"
    prompt = hf.format_prompt("Name a colour.")
    request = ScoreRequest(prompt, ("Red", " blue"))
    got, want = hf.score([request])[0], smollm2_backend.score([request])[0]
    assert [s.n_tokens for s in got] == [s.n_tokens for s in want]
    assert [s.logprob for s in got] == pytest.approx([s.logprob for s in want], abs=1e-4)
    hf.close()


@pytest.mark.model
def test_bfloat16_scores_close_to_float32(smollm2_backend):
    bf = TransformersBackend("smollm2-135m-instruct", dtype="bfloat16")
    assert next(bf.model.parameters()).dtype == torch.bfloat16
    prompt = bf.format_prompt("Say yes or no.")
    request = ScoreRequest(prompt, ("Yes", "No"))
    got, want = bf.score([request])[0], smollm2_backend.score([request])[0]
    assert [s.logprob for s in got] == pytest.approx([s.logprob for s in want], abs=0.5)
    bf.close()


needs_onednn = pytest.mark.skipif(onednn.ONEDNN_LINEAR is None, reason="this torch build has no oneDNN linear")


@needs_onednn
@pytest.mark.model
def test_onednn_layers_compute_the_models_own_products(backend):
    # On CPU in float32 every linear layer runs through oneDNN: each must compute the
    # product F.linear computes, the head's logits and its sliced normaliser alike.
    layers = [m for m in backend.model.modules() if type(m) is torch.nn.Linear]
    head = backend.model.get_output_embeddings()
    assert backend.onednn_linears == len(layers) and head in layers
    assert backend.info().details["linear_layers"] == "onednn"
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for layer in (layers[0], layers[-2], head):
            x = torch.randn(2, 7, layer.in_features, generator=gen)
            want = torch.nn.functional.linear(x, layer.weight, layer.bias)
            got = layer(x)
            assert got.shape == want.shape
            assert (got - want).abs().max() <= 1e-5 * want.abs().max()
        hidden = x[0]
        sliced = onednn.logsumexp_rows(head.weight, hidden, slice_rows=10_000)  # a ragged last slice
        whole = torch.logsumexp(torch.nn.functional.linear(hidden, head.weight), dim=-1)
    assert torch.allclose(sliced, whole, atol=1e-5)


@needs_onednn
def test_onednn_only_where_it_keeps_the_arithmetic():
    x = torch.randn(2, 3, 16)
    model = torch.nn.Sequential(torch.nn.Linear(16, 50), torch.nn.Linear(50, 8, dtype=torch.bfloat16))

    class Quantised(torch.nn.Linear):  # a subclass computes something else: left alone
        pass

    model.append(Quantised(8, 4))
    with torch.no_grad():
        want = model[0](x)
        assert onednn.use_onednn_linears(model) == 1  # float32 nn.Linear only
        assert torch.allclose(model[0](x), want, atol=1e-5)  # the bias is kept
    assert "forward" not in vars(model[1]) and "forward" not in vars(model[2])
    # With gradients on, a routed layer falls back to F.linear (oneDNN's op is for inference).
    model[0](x).sum().backward()
    assert model[0].weight.grad is not None


# -- tokenizers ------------------------------------------------------------------------------


@pytest.mark.model
def test_smollm2_tokenizer_is_repaired(smollm2_backend):
    tok = smollm2_backend.tokenizer
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token is not None
    prompt = smollm2_backend.format_prompt("What is 2+2?")
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    ids = smollm2_backend.encode(prompt)
    start = tok.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == start and ids[1] != start
    assert smollm2_backend.encode("hello")[0] != start  # no BOS: add_bos_token is False in the file
    assert smollm2_backend.info().chat_template


@pytest.mark.model
def test_gemma_tokenizer_has_one_bos(gemma_backend):
    tok = gemma_backend.tokenizer
    assert tok.chat_template is None
    assert gemma_backend.format_prompt("What is 2+2?") == "What is 2+2?"
    for text in ("What is 2+2?", "<bos>What is 2+2?"):
        ids = gemma_backend.encode(text)
        assert ids[0] == tok.bos_token_id == 2
        assert ids.count(tok.bos_token_id) == 1
    assert (tok.eos_token, tok.pad_token) == ("<eos>", "<pad>")
    assert not gemma_backend.info().chat_template


@pytest.mark.model
@pytest.mark.parametrize(
    "text, pieces",
    [
        ("hello world", ["hello", "▁world"]),
        # Checked against sentencepiece itself on a model built from the GGUF vocabulary.
        (
            "Hello, World!  two  spaces\tand\ttabs\n\nnew   lines",
            ["Hello", ",", "▁World", "!", "  ", "two", "  ", "spaces", "\t", "and", "\t", "tabs", "\n\n", "new", "   ", "lines"],
        ),
    ],
)
def test_gemma_tokenizer_is_sentencepiece_bpe(gemma_backend, text, pieces):
    tok = gemma_backend.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == pieces
    assert tok.decode(ids) == text


# -- score ---------------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("scoring", tb.SCORING)
def test_score_matches_a_full_forward_pass(backend, scoring, monkeypatch):
    monkeypatch.setattr(backend, "scoring", scoring)
    prompt = backend.format_prompt("Play chess. Your move as white:")
    lengths = [len(backend.continuation_ids(prompt, c)) for c in CONTINUATIONS]
    assert len(set(lengths)) >= 3, lengths
    scores = backend.score([ScoreRequest(prompt, CONTINUATIONS)])[0]
    assert [s.n_tokens for s in scores] == lengths
    for continuation, score in zip(CONTINUATIONS, scores):
        assert score.logprob == pytest.approx(naive_logprob(backend, prompt, continuation), abs=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("scoring", tb.SCORING)
def test_score_in_small_chunks_gives_the_same(smollm2_backend, monkeypatch, scoring):
    monkeypatch.setattr(smollm2_backend, "scoring", scoring)
    prompt = smollm2_backend.format_prompt("Pick a move.")
    request = ScoreRequest(prompt, CONTINUATIONS)
    whole = smollm2_backend.score([request])[0]
    # Room for one row of logits at a time: every continuation runs on its own cache copy.
    monkeypatch.setattr(tb, "LOGIT_BUDGET", 1)
    chunked = smollm2_backend.score([request])[0]
    assert [s.logprob for s in chunked] == pytest.approx([s.logprob for s in whole], abs=1e-4)


def env_requests(backend: TransformersBackend, env_name: str, enc_name: str, n: int, variant: str | None = None,
                 **options) -> list[ScoreRequest]:
    """Choose-mode requests of ``n`` real decisions of an environment under random play."""
    import numpy as np

    from textenvs import build_prompt, get_encoding, make_env

    env, enc, rng = make_env(env_name, variant, **options), get_encoding(env_name, enc_name), np.random.default_rng(0)
    env.reset(seed=0)
    requests = []
    while len(requests) < n:
        legal = env.legal_actions()
        state = env.text_state()
        prompt = backend.format_prompt(build_prompt(enc, state, legal, "choose"))
        sep = "" if prompt[-1].isspace() else " "
        requests.append(ScoreRequest(prompt, tuple(sep + enc.render_action(state, a) for a in legal)))
        _, _, terminated, truncated, _ = env.step(str(rng.choice(legal)))
        if terminated or truncated or not env.legal_actions():
            env.reset(seed=int(rng.integers(1 << 30)))
    return requests


def real_requests(backend: TransformersBackend, n_chess: int, n_grid: int) -> list[ScoreRequest]:
    """Choose-mode requests of real decisions: chess (FEN, random play) and FrozenLake."""
    return (env_requests(backend, "chess", "fen", n_chess, opponent="random", analysis="off")
            + env_requests(backend, "frozenlake", "ascii", n_grid))


@pytest.mark.model
def test_packed_scoring_equals_cached_scoring_on_real_prompts(backend, monkeypatch):
    requests = real_requests(backend, 6, 3)
    assert sum(len(r.continuations) for r in requests) > 100
    monkeypatch.setattr(backend, "scoring", "cached")
    cached = backend.score(requests)
    monkeypatch.setattr(backend, "scoring", "packed")
    assert backend.head_is_plain()  # both embedded models: the sliced head, not the model's logits
    packed = backend.score(requests)
    monkeypatch.setattr(backend, "plain_head", False)
    packed_logits = backend.score(requests)
    for other in (cached, packed_logits):
        gap = max(abs(a.logprob - b.logprob) for x, y in zip(other, packed) for a, b in zip(x, y))
        print(f"\nlargest gap over {sum(map(len, packed))} continuations: {gap:.1e}")
        assert gap < 1e-4
        assert [[s.n_tokens for s in r] for r in packed] == [[s.n_tokens for s in r] for r in other]


@pytest.mark.model
def test_prompts_batched_in_one_pass_score_as_one_at_a_time(backend, monkeypatch):
    requests = real_requests(backend, 6, 3)
    requests.insert(4, ScoreRequest(requests[0].prompt, ()))  # nothing to score: left out of the batch
    assert backend.prompt_batch == 1 and backend.info().details["prompt_batch"] == 1  # "auto" on CPU
    alone = backend.score(requests)
    monkeypatch.setattr(backend, "prompt_batch", 4)  # batches of 4, 4 and 1, right-padded
    before = backend.trie_tokens
    batched = backend.score(requests)
    assert backend.trie_tokens > before
    assert batched[4] == []
    assert [[s.n_tokens for s in r] for r in batched] == [[s.n_tokens for s in r] for r in alone]
    gap = max(abs(a.logprob - b.logprob) for x, y in zip(alone, batched) for a, b in zip(x, y))
    print(f"\nlargest gap, batched against one at a time: {gap:.1e}")
    assert gap < 1e-4


@pytest.mark.parametrize("value", [0, -2, "many", 2.5, True])
def test_bad_prompt_batch(value):
    with pytest.raises(ValueError, match="prompt_batch"):
        TransformersBackend("smollm2-135m-instruct", prompt_batch=value)


@pytest.mark.model
def test_packed_scoring_keeps_the_models_logits_where_its_head_is_not_plain(gemma_backend, monkeypatch):
    # Gemma's forward soft-caps its logits when its config asks (as Gemma 2 does): packed
    # scoring must notice, and score with the model's own (capped) logits, as cached scoring does.
    monkeypatch.setattr(gemma_backend.model.config, "final_logit_softcapping", 5.0)
    monkeypatch.setattr(gemma_backend, "plain_head", None)
    assert not gemma_backend.head_is_plain()
    requests = real_requests(gemma_backend, 2, 1)
    monkeypatch.setattr(gemma_backend, "scoring", "cached")
    cached = gemma_backend.score(requests)
    monkeypatch.setattr(gemma_backend, "scoring", "packed")
    packed = gemma_backend.score(requests)
    gap = max(abs(a.logprob - b.logprob) for x, y in zip(cached, packed) for a, b in zip(x, y))
    assert gap < 1e-4


def test_unknown_scoring_lists_the_choices():
    with pytest.raises(ValueError, match="packed, cached"):
        TransformersBackend("smollm2-135m-instruct", scoring="trie")


def test_unknown_linear_layers_lists_the_choices():
    with pytest.raises(ValueError, match="onednn, torch"):
        TransformersBackend("smollm2-135m-instruct", linear_layers="mkl")


@pytest.mark.model
def test_torch_linear_layers_score_as_onednn_ones(smollm2_backend):
    plain = TransformersBackend("smollm2-135m-instruct", linear_layers="torch")
    assert plain.onednn_linears == 0 and plain.info().details["linear_layers"] == "torch"
    assert not any("forward" in vars(m) for m in plain.model.modules())
    requests = real_requests(plain, 2, 1)
    got, want = plain.score(requests), smollm2_backend.score(requests)
    gap = max(abs(a.logprob - b.logprob) for x, y in zip(got, want) for a, b in zip(x, y))
    assert gap < 1e-4
    plain.close()


def test_unknown_prefix_cache_lists_the_choices():
    with pytest.raises(ValueError, match="on, off"):
        TransformersBackend("smollm2-135m-instruct", prefix_cache="yes")


def scored_one_by_one(backend: TransformersBackend, requests: list[ScoreRequest]) -> tuple[list, list[int], list[int]]:
    """Scores of each request, scored in turn, with the prompt tokens each prefilled and reused."""
    scores, prefilled, reused = [], [], []
    for request in requests:
        before = (backend.prefilled_tokens, backend.reused_tokens)
        scores.append(backend.score([request])[0])
        prefilled.append(backend.prefilled_tokens - before[0])
        reused.append(backend.reused_tokens - before[1])
    return scores, prefilled, reused


@pytest.mark.model
def test_prefix_cache_gives_the_scores_of_whole_prompts(backend, monkeypatch):
    assert backend.prefix_cache == "on"  # the default
    chess = env_requests(backend, "chess", "fen", 3, opponent="random", analysis="off")
    game = env_requests(backend, "take-away", "prose", 3, variant="seeded")  # its rules in every prompt
    longer = ScoreRequest(game[0].prompt + "Think, then answer.\n", game[0].continuations)
    shorter = ScoreRequest(chess[0].prompt[: len(chess[0].prompt) // 2], (" the", " a", " e4"))
    unrelated = ScoreRequest("Zebras graze at dawn. Name a colour:", (" red", " blue"))
    requests = [game[0], chess[0], game[1], longer, shorter, chess[1], chess[1], unrelated, game[2], game[0], chess[2]]
    monkeypatch.setattr(backend, "prefix_cache", "off")
    whole, prefilled_off, reused_off = scored_one_by_one(backend, requests)
    monkeypatch.setattr(backend, "prefix_cache", "on")
    monkeypatch.setattr(backend, "prefix_store", PrefixStore(PREFIX_ENTRIES))
    cached, prefilled_on, reused_on = scored_one_by_one(backend, requests)
    gap = max(abs(a.logprob - b.logprob) for x, y in zip(whole, cached) for a, b in zip(x, y))
    print(f"\nlargest gap over {sum(map(len, cached))} continuations: {gap:.1e}; prompt tokens prefilled "
          f"{sum(prefilled_on)} with the cache, {sum(prefilled_off)} without: {prefilled_on}")
    assert gap <= 1e-4
    assert [[s.n_tokens for s in r] for r in cached] == [[s.n_tokens for s in r] for r in whole]
    n = [len(backend.encode(r.prompt)) for r in requests]
    assert prefilled_off == n and sum(reused_off) == 0
    assert [p + r for p, r in zip(prefilled_on, reused_on)] == n
    assert sum(prefilled_on) < sum(prefilled_off) // 2
    # The same chess position again, and the first game prompt after eight others: its last token only.
    assert prefilled_on[6] == prefilled_on[9] == 1
    assert reused_on[3] == n[0]  # the game prompt, then one that extends it
    assert reused_on[4] >= n[4] - 2  # a prompt cut short: the chess prompt holds all but its last token or two
    assert reused_on[7] == len(backend.renderer.prefix_ids)  # shares nothing, or the BOS
    assert reused_on[2] > 60  # the other game prompt shares the rules text


@pytest.mark.model
def test_score_several_requests(smollm2_backend):
    a = ScoreRequest(smollm2_backend.format_prompt("Say A."), ("A", " B"))
    b = ScoreRequest(smollm2_backend.format_prompt("Say B."), ("B",))
    both = smollm2_backend.score([a, b, ScoreRequest("x", ())])
    alone = [smollm2_backend.score([a])[0], smollm2_backend.score([b])[0]]
    # The prefix cache may serve either from a stored prefix: equal to float32 rounding.
    for together, single in zip(both[:2], alone):
        assert [s.n_tokens for s in together] == [s.n_tokens for s in single]
        assert [s.logprob for s in together] == pytest.approx([s.logprob for s in single], abs=1e-4)
    assert both[2] == []
    assert all(s.logprob < 0 for s in both[0] + both[1])


@pytest.mark.model
def test_empty_continuation_is_an_error(smollm2_backend):
    with pytest.raises(ValueError, match="empty continuation"):
        smollm2_backend.score([ScoreRequest("Hi", (" ok", ""))])


@pytest.mark.model
def test_continuation_token_boundary(gemma_backend):
    prompt = "The answer is"
    ids = gemma_backend.continuation_ids(prompt, " yes")
    assert gemma_backend.encode(prompt) + ids == gemma_backend.encode(prompt + " yes")


# -- generate ------------------------------------------------------------------------------


@pytest.mark.model
def test_greedy_is_deterministic(backend):
    prompt = backend.format_prompt("Name three colours.")
    options = GenerateOptions(max_new_tokens=8, stop=())
    first = backend.generate([prompt], options)
    assert backend.generate([prompt], options) == first
    assert isinstance(first[0], str) and first[0]
    assert not first[0].startswith(prompt[-10:])  # only the new text


@pytest.mark.model
def test_sampling_repeats_with_the_same_seed(smollm2_backend):
    prompt = smollm2_backend.format_prompt("Tell me a word.")
    options = GenerateOptions(max_new_tokens=10, temperature=1.0, seed=1234, stop=())
    assert smollm2_backend.generate([prompt, prompt], options) == smollm2_backend.generate([prompt, prompt], options)


@pytest.mark.model
def test_stop_string_cuts_the_reply(smollm2_backend):
    prompt = smollm2_backend.format_prompt("Write a sentence about the sea.")
    full = smollm2_backend.generate([prompt], GenerateOptions(max_new_tokens=16, stop=()))[0]
    assert len(full) > 8, full
    stop = full[len(full) // 2 : len(full) // 2 + 2]  # a string met halfway through the reply
    cut = smollm2_backend.generate([prompt], GenerateOptions(max_new_tokens=16, stop=("@@@", stop)))[0]
    assert cut == full[: full.index(stop)]


@pytest.mark.model
def test_batch_equals_one_by_one(backend):
    prompts = [
        backend.format_prompt("Hi"),
        backend.format_prompt("Write the first move of a chess game in algebraic notation, please."),
        backend.format_prompt("The sky is"),
    ]
    options = GenerateOptions(max_new_tokens=6, stop=())
    batch = backend.generate(prompts, options)
    assert batch == [backend.generate([p], options)[0] for p in prompts]


def retry_prompt(backend: TransformersBackend, first: str, reply: str, correction: str) -> str:
    """The first prompt, the refused reply and a correction turn (a new user turn under a chat template)."""
    if not backend.tokenizer.chat_template:
        return f"{first}{reply}\n{correction}\nYour move:"
    turns = [{"role": "user", "content": first}, {"role": "assistant", "content": reply},
             {"role": "user", "content": correction}]
    return backend.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)


@pytest.mark.model
def test_retry_prefills_only_past_the_first_attempt(backend, monkeypatch):
    chess = env_requests(backend, "chess", "fen", 2, opponent="random", analysis="off")
    # Two prompts of different lengths in one batch (left padding), then their retries.
    questions = [backend.format_prompt("Reply with one chess move in UCI notation, e.g. e2e4."), chess[1].prompt]
    options = GenerateOptions(max_new_tokens=10, stop=())
    runs = {}
    for mode in ("off", "on"):
        monkeypatch.setattr(backend, "prefix_cache", mode)
        monkeypatch.setattr(backend, "prefix_store", PrefixStore(PREFIX_ENTRIES))
        before = backend.prefilled_tokens
        replies = backend.generate(questions, options)
        middle = backend.prefilled_tokens
        user = ["Reply with one chess move in UCI notation, e.g. e2e4.", None]
        retries = [retry_prompt(backend, u, r, "That move is not legal here. Answer again.") if u else
                   q + r + "\nNot legal. Your move:" for u, q, r in zip(user, questions, replies)]
        again = backend.generate(retries, options)
        runs[mode] = (replies, again, middle - before, backend.prefilled_tokens - middle)
    print(f"\nretry prompt tokens prefilled: {runs['on'][3]} with reuse, {runs['off'][3]} without; replies {runs['on'][:2]}")
    assert runs["on"][:2] == runs["off"][:2]
    assert all(runs["on"][0]) and all(runs["on"][1])
    first_ids = sum(len(backend.encode(q)) for q in questions)
    assert runs["off"][2] == first_ids and runs["on"][2] <= first_ids
    # Each retry runs only what follows its first attempt's prompt (and reply tokens it kept).
    assert runs["on"][3] <= runs["off"][3] - first_ids + 2


@pytest.mark.model
def test_harness_retry_reuses_the_first_prompt(smollm2_backend, monkeypatch):
    from textenvs import build_prompt, get_encoding, make_env

    env, enc = make_env("take-away", "seeded"), get_encoding("take-away", "prose")
    env.reset(seed=0)
    legal, state = env.legal_actions(), env.text_state()
    first = smollm2_backend.format_prompt(build_prompt(enc, state, legal, "generate"))
    retry = smollm2_backend.format_prompt(build_prompt(enc, state, legal, "generate", "Your previous answer 'x' was not accepted. Answer again.\n"))
    monkeypatch.setattr(smollm2_backend, "prefix_store", PrefixStore(PREFIX_ENTRIES))
    options = GenerateOptions(max_new_tokens=6, stop=())
    smollm2_backend.generate([first], options)
    before = smollm2_backend.prefilled_tokens
    reply = smollm2_backend.generate([retry], options)
    prefilled = smollm2_backend.prefilled_tokens - before
    monkeypatch.setattr(smollm2_backend, "prefix_cache", "off")
    assert smollm2_backend.generate([retry], options) == reply
    n = len(smollm2_backend.encode(retry))
    print(f"\nharness retry: {prefilled} of {n} prompt tokens prefilled")
    assert prefilled < n // 4  # the rules, position and legal moves come from the first attempt


@pytest.mark.model
def test_generate_edge_cases(smollm2_backend):
    assert smollm2_backend.generate([], GenerateOptions()) == []
    assert smollm2_backend.generate(["Hi"], GenerateOptions(max_new_tokens=0)) == [""]
    with pytest.raises(ValueError, match="temperature"):
        smollm2_backend.generate(["Hi"], GenerateOptions(temperature=-1.0))


@pytest.mark.model
def test_per_prompt_seeds_make_a_sampled_reply_independent_of_its_batch(smollm2_backend):
    from harness.backends.base import GenerateOptions

    fmt = smollm2_backend.format_prompt
    a, b, c = (fmt(t) for t in ("Name a fruit.", "Write a chess move in UCI.", "Count to five."))
    opts = dict(max_new_tokens=10, temperature=1.0, stop=())
    alone = smollm2_backend.generate([a], GenerateOptions(**opts, seeds=(7,)))[0]
    batched = smollm2_backend.generate([b, a, c], GenerateOptions(**opts, seeds=(11, 7, 13)))
    assert batched[1] == alone
    with pytest.raises(ValueError, match="2 seeds for 1 prompts"):
        smollm2_backend.generate([a], GenerateOptions(**opts, seeds=(1, 2)))


@pytest.mark.model
def test_sampled_generate_run_gives_each_episode_the_same_replies_at_any_batch_size(smollm2_backend, tmp_path):
    # A resumed run replays unfinished episodes in new batches; so does another --batch-size.
    from harness.config import RunConfig
    from harness.records import iter_steps
    from harness.runner import Runner

    replies = {}
    for size in (1, 3):
        cfg = RunConfig(env="frozenlake", encoding="ascii", mode="generate", episodes=3, max_steps=2, batch_size=size,
                        seed=5, temperature=1.0, max_new_tokens=8, max_retries=1)
        run = Runner(cfg, smollm2_backend).run(tmp_path / f"b{size}")
        replies[size] = sorted((s["episode"], s["t"], s["reply"]) for s in iter_steps(run))
    print(f"\n{len(replies[1])} steps; replies at batch size 1: {[r[2] for r in replies[1]]}")
    assert replies[1] == replies[3]
    assert len({r[2] for r in replies[1]}) > 1  # sampled, not one greedy reply

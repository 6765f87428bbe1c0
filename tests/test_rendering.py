"""One prompt rendering for every backend: the same text and tokens as ``transformers``, without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.backends.openai import renderer_of
from harness.backends.rendering import Renderer, load_renderer, prefix_ids

TEXTS = ["Pick a move.", " hello  world\n\tx", "<bos>hi", "e2e4 Nf3 <|im_end|> é ü 中文", "", "a" * 300]


def test_loading_a_renderer_imports_no_torch():
    renderer_of("smollm2-135m-instruct")  # the GGUF conversion cached (converting it needs torch)
    code = ("import sys; from harness.backends.rendering import load_renderer; "
            "r = load_renderer('smollm2-135m-instruct'); r.format_prompt('x'); r.encode('x'); "
            "from harness.backends.openai import OpenAIBackend; OpenAIBackend('smollm2-135m-instruct'); "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.model
@pytest.mark.parametrize("fixture, name", [("smollm2_backend", "smollm2-135m-instruct"), ("gemma_backend", "gemma3-270m")])
def test_the_light_renderer_is_the_in_process_one(fixture, name, request):
    backend = request.getfixturevalue(fixture)
    light = load_renderer(name)
    tok = backend.tokenizer
    assert light.prefix_ids == prefix_ids(lambda t, s: tok(t, add_special_tokens=s)["input_ids"])
    for text in TEXTS:
        expected = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                           add_generation_prompt=True) if tok.chat_template else text
        assert light.format_prompt(text) == backend.format_prompt(text) == expected
        assert light.encode(expected) == backend.encode(expected)
        assert light.encode(text) == backend.encode(text)
        for cont in (" e2e4", "Nf3", "\n\nmove"):
            assert list(light.continuation(expected, cont).ids) == backend.continuation_ids(expected, cont)


@pytest.mark.model
def test_an_open_assistant_turn_renders_as_transformers_does(smollm2_backend):
    tok = smollm2_backend.tokenizer
    light = load_renderer("smollm2-135m-instruct", system="Play well.")
    messages = [*light.messages("Your move?"), {"role": "assistant", "content": "e2e4"}]
    assert light.messages("Your move?")[0] == {"role": "system", "content": "Play well."}
    assert light.render(messages, continue_final_message=True) == tok.apply_chat_template(
        messages, tokenize=False, continue_final_message=True)
    assert light.render(messages, continue_final_message=True) == light.format_prompt("Your move?") + "e2e4"


def test_bos_text_goes_in_front_once():
    gemma = renderer_of("gemma3-270m")
    assert gemma.bos_text == "<bos>" and gemma.wire_text("Move?") == "<bos>Move?" == gemma.wire_text("<bos>Move?")
    assert gemma.encode("<bos>Move?") == gemma.encode("Move?")
    smol = renderer_of("smollm2-135m-instruct")
    assert smol.bos_text == "" and smol.wire_text("Move?") == "Move?"
    assert smol.details()["rendering"] == "chat_template" and gemma.details()["rendering"] == "plain"


def test_a_continuation_that_merges_with_the_prompt_is_tokenized_alone():
    smol = renderer_of("smollm2-135m-instruct")
    prompt = smol.format_prompt("Say something.")  # ends with "\n"
    whole = smol.continuation(prompt, " yes")
    assert whole.joined and list(whole.ids) == smol.plain_ids(" yes")
    merged = smol.continuation(prompt, "\n\nOK")  # "\n" + "\n\n" tokenize as one run of newlines
    assert not merged.joined and list(merged.ids) == smol.plain_ids("\n\nOK")
    with pytest.raises(ValueError, match="empty continuation"):
        smol.continuation(prompt, "")


def test_an_unconverted_gguf_file_needs_a_converter(tmp_path, monkeypatch):
    from harness.backends.base import BackendError
    from harness.models import embedded_path

    monkeypatch.setenv("ZSO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BackendError, match="not converted yet"):
        load_renderer(str(embedded_path("smollm2-135m-instruct")))


def test_a_template_that_raises_is_an_error():
    renderer = Renderer(lambda t, s: [ord(c) for c in t], "{{ raise_exception('no system role') }}")
    import jinja2

    with pytest.raises(jinja2.exceptions.TemplateError, match="no system role"):
        renderer.format_prompt("x")

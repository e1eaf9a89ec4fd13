"""The transformers backend's two decoding paths: chosen once at load, same tokens in fp32.

Tiny random models (no download, no bundled weights), so these run in the fast suite.
"""

import time

import pytest
import torch

from components.llm.transformers_backend import (
    DecoderPath,
    GenerateDecoderPath,
    LeanDecoderPath,
    TransformersBackend,
    _StopWatch,
    select_decoder_path,
)

EOS = 2


class _Tokenizer:
    """What the decoding paths and the stop watch use of a tokenizer."""

    eos_token_id = EOS
    pad_token_id = 0

    def decode(self, tokens, skip_special_tokens=True):
        return " ".join(str(t) for t in tokens)


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=EOS,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=128)
    return GPT2LMHeadModel(config).eval()


def _watch():
    return _StopWatch(_Tokenizer(), None, time.monotonic() + 60, time.monotonic())


def test_the_lean_path_is_chosen_for_llama_models():
    path = select_decoder_path(_llama(), _Tokenizer(), "none", "lean")
    assert isinstance(path, LeanDecoderPath) and isinstance(path, DecoderPath)
    assert path.name == "lean"


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_generate_is_chosen_when_asked_for(quantize):
    path = select_decoder_path(_llama(), _Tokenizer(), quantize, "generate")
    assert isinstance(path, GenerateDecoderPath) and path.name == "generate"


def test_unsupported_architectures_fall_back_to_generate():
    path = select_decoder_path(_gpt2(), _Tokenizer(), "none", "lean")
    assert isinstance(path, GenerateDecoderPath)


def test_both_paths_give_the_same_fp32_tokens():
    model = _llama()
    lean = select_decoder_path(model, _Tokenizer(), "none", "lean")
    reference = select_decoder_path(model, _Tokenizer(), "none", "generate")
    prompt = [1, 5, 9, 13, 17, 21, 25, 29]
    with torch.inference_mode():
        expected = reference.generate(prompt, None, 6, 0.0, _watch())
        assert lean.generate(prompt, None, 6, 0.0, _watch()) == expected
        # a cached prefix changes nothing, on either path, and is not modified by a call
        for path in (lean, reference):
            prefix = path.prefill(prompt[:4])
            assert path.generate(prompt, prefix, 6, 0.0, _watch()) == expected
            assert path.generate(prompt, prefix, 6, 0.0, _watch()) == expected
        inputs = {
            "input_ids": torch.tensor([[0, 0, *prompt[:6]], prompt]),
            "attention_mask": torch.tensor([[0, 0] + [1] * 6, [1] * 8]),
        }
        rows = [p.generate_batch(inputs, 4, 0.0, _watch()) for p in (lean, reference)]
    assert len(rows[0]) == 2
    for lean_row, reference_row in zip(*rows, strict=True):
        cut = lean_row.index(EOS) + 1 if EOS in lean_row else len(lean_row)
        assert lean_row[:cut] == reference_row[:cut]
    assert rows[0][1][:4] == expected[:4]


def test_the_backend_reports_no_lean_decoder_before_loading():
    backend = TransformersBackend(decoder="lean")
    assert backend.lean is False

"""The lean Llama decoder reproduces transformers' model and covers only what it can."""

import pytest
import torch

from components.llm.llama_decoder import LlamaDecoder, UnsupportedModel

CHAT = [
    {"role": "system", "content": "You are the Demo Shop assistant. Keep every number."},
    {"role": "user", "content": "Where is my order KF100234? It was due on 3 May."},
]


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.model_prep import smollm2_path

    path = str(smollm2_path())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)


CALIBRATION = [
    "Where is my parcel? It is late.",
    "我的退款什么时候到账？",
    "Can I change my address?",
]


def _ids(tokenizer, messages) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text)["input_ids"]


def _greedy(logits: torch.Tensor) -> int:
    return int(logits.argmax())


@pytest.mark.slow
def test_fp32_decoder_matches_transformers_token_for_token(smollm2):
    model, tokenizer = smollm2
    decoder = LlamaDecoder(model, int8=False)
    ids = _ids(tokenizer, CHAT)
    with torch.inference_mode():
        expected = model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.eos_token_id,
        )[0, len(ids):].tolist()  # fmt: skip
        got = decoder.decode(ids, 24, _greedy, lambda t: t[-1] == tokenizer.eos_token_id)
        logits = decoder.forward(torch.tensor([ids]), decoder.new_cache(1, len(ids)), 0)
        reference = model(torch.tensor([ids])).logits[0, -1]
    assert got == expected
    assert torch.allclose(logits[0], reference, atol=1e-3)


@pytest.mark.slow
def test_cached_prefix_and_left_padded_batch_give_the_same_logits(smollm2):
    model, tokenizer = smollm2
    decoder = LlamaDecoder(model, int8=False)
    long_ids = _ids(tokenizer, CHAT)
    short_ids = _ids(tokenizer, [{"role": "user", "content": "Hi"}])
    with torch.inference_mode():
        alone = [
            decoder.forward(torch.tensor([ids]), decoder.new_cache(1, len(ids)), 0)[0]
            for ids in (long_ids, short_ids)
        ]
        # system message prefilled once, then only the rest of the prompt
        system = tokenizer(tokenizer.apply_chat_template(CHAT[:1], tokenize=False))["input_ids"]
        assert long_ids[: len(system)] == system
        prefix = decoder.new_cache(1, len(system))
        decoder.forward(torch.tensor([system]), prefix, 0)
        cache = decoder.new_cache(1, len(long_ids))
        cache.keys[:, :, :, : len(system)] = prefix.keys
        cache.values[:, :, :, : len(system)] = prefix.values
        resumed = decoder.forward(torch.tensor([long_ids[len(system) :]]), cache, len(system))[0]
        # both prompts in one left-padded batch, each row with its own positions
        width = len(long_ids)
        pad = width - len(short_ids)
        ids = torch.tensor([long_ids, [0] * pad + short_ids])
        mask = torch.ones(2, width, dtype=torch.bool)
        mask[1, :pad] = False
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        batched = decoder.forward(ids, decoder.new_cache(2, width), 0, positions, mask)
    assert torch.allclose(resumed, alone[0], atol=1e-3)
    assert torch.allclose(batched[0], alone[0], atol=1e-3)
    assert torch.allclose(batched[1], alone[1], atol=1e-3)


@pytest.mark.slow
def test_smoothed_int8_stays_closer_to_fp32_than_plain_int8(smollm2):
    model, tokenizer = smollm2
    calibration = [_ids(tokenizer, [{"role": "user", "content": t}]) for t in CALIBRATION]
    held_out = [
        _ids(tokenizer, CHAT),
        _ids(tokenizer, [{"role": "user", "content": "退货运费谁出？我想退掉这双鞋。"}]),
        _ids(tokenizer, [{"role": "user", "content": "Rewrite politely: send a photo."}]),
    ]
    with torch.inference_mode():
        fp32 = LlamaDecoder(model, int8=False)
        plain = LlamaDecoder(model, int8=True)
        smoothed = LlamaDecoder(model, int8=True, calibration=calibration)
        closeness = {"plain": [], "smoothed": []}
        for ids in held_out:
            exact = fp32.forward(torch.tensor([ids]), fp32.new_cache(1, len(ids)), 0)[0]
            for name, decoder in (("plain", plain), ("smoothed", smoothed)):
                got = decoder.forward(torch.tensor([ids]), decoder.new_cache(1, len(ids)), 0)[0]
                closeness[name].append(torch.cosine_similarity(got, exact, dim=0).item())
                assert closeness[name][-1] > 0.98
    assert sum(closeness["smoothed"]) > sum(closeness["plain"])


TINY = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=50, max_position_embeddings=64,
)  # fmt: skip


def test_other_architectures_are_refused_by_name():
    import transformers

    gpt2 = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16)
    )
    refused = {
        "gpt2": gpt2,
        "linear": transformers.LlamaForCausalLM(
            transformers.LlamaConfig(
                **TINY,
                rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0},
            )
        ),
        "sliding window": transformers.MistralForCausalLM(
            transformers.MistralConfig(**TINY, sliding_window=4)
        ),
    }
    for reason, model in refused.items():
        with pytest.raises(UnsupportedModel, match=reason):
            LlamaDecoder(model)


def _tiny(kind: str):
    import transformers

    if kind == "llama with attention bias":
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(**TINY, attention_bias=True))
    if kind == "qwen2":  # q/k/v bias, no o bias
        return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**TINY))
    return transformers.MistralForCausalLM(transformers.MistralConfig(**TINY, sliding_window=None))


@pytest.mark.parametrize("kind", ["llama with attention bias", "qwen2", "mistral"])
def test_tiny_models_match_transformers(kind):
    torch.manual_seed(0)
    model = _tiny(kind).eval()
    for layer in model.model.layers:  # non-zero biases, so a misplaced one would show
        for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
            if proj.bias is not None:
                torch.nn.init.normal_(proj.bias, std=0.5)
    ids = [3, 14, 15, 9, 26, 5]
    with torch.inference_mode():
        expected = model(torch.tensor([ids])).logits[0, -1]
        decoder = LlamaDecoder(model, int8=False)
        got = decoder.forward(torch.tensor([ids]), decoder.new_cache(1, len(ids)), 0)[0]
        # smoothing rescales weights and norms; in fp32 the function must stay the same
        smoothed = LlamaDecoder(model, int8=False, calibration=[[7, 8, 9, 10], [41, 2]])
        rescaled = smoothed.forward(torch.tensor([ids]), smoothed.new_cache(1, len(ids)), 0)[0]
        with pytest.raises(ValueError, match="positions"):
            decoder.forward(torch.tensor([[1] * 65]), decoder.new_cache(1, 65), 0)
    assert torch.allclose(got, expected, atol=1e-4)
    assert torch.allclose(rescaled, expected, atol=1e-4)

"""Packing: rows fill up, the order replays by (seed, epoch), and packed examples never see each other."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from synth.training.masking import IGNORE, Encoded
from synth.training.attention import register, segment_bounds
from synth.training.packing import collate, epoch_batches, pack, real_tokens


def example(n, start=1, answer_from=2):
    ids = [(start + i) % 250 + 1 for i in range(n)]
    return Encoded(ids, [IGNORE] * answer_from + ids[answer_from:])


@pytest.mark.parametrize("lengths, capacity", [
    ([5, 3, 8, 2, 7, 1, 4], 10),
    ([10] * 5, 10),
    ([1] * 50, 7),
    ([37, 120, 512, 300, 90, 256, 480, 33, 200, 64, 128, 450] * 10, 512),
])
def test_pack_keeps_every_example_once_and_never_overflows(lengths, capacity):
    rows = pack(lengths, capacity)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= capacity for row in rows)
    assert len(rows) <= -(-sum(lengths) // capacity) + 1       # best fit is within one row of the ideal here


def test_pack_fills_rows_to_at_least_95_percent_on_realistic_lengths():
    lengths = [(i * 7919) % 600 + 80 for i in range(400)]
    rows = pack(lengths, 2048)
    assert sum(lengths) / (len(rows) * 2048) >= 0.95


def test_pack_refuses_an_example_longer_than_a_row():
    with pytest.raises(ValueError):
        pack([3, 11], 10)


def test_without_packing_every_example_has_its_own_row():
    assert pack([3, 4, 5], 10, enabled=False) == [[0], [1], [2]]


def test_epoch_order_is_a_function_of_seed_and_epoch():
    lengths = [(i * 31) % 50 + 5 for i in range(60)]
    a = epoch_batches(lengths, 64, 2, 3, seed=1, epoch=0)
    assert a == epoch_batches(lengths, 64, 2, 3, seed=1, epoch=0)
    assert a != epoch_batches(lengths, 64, 2, 3, seed=1, epoch=1)
    assert a != epoch_batches(lengths, 64, 2, 3, seed=2, epoch=0)
    assert len(a) % 3 == 0
    seen = sorted(i for batch in a for row in batch for i in row)
    assert set(seen) == set(range(60))                          # top-up repeats a few, but nothing is missed


def test_collate_restarts_positions_and_pads_with_ignored_labels():
    examples = [example(3), example(4, 10), example(2, 20, answer_from=1)]
    batch = collate(examples, [[0, 1], [2]], pad_id=0)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3], [0, 1, 0, 1, 2, 3, 4]]
    assert batch["input_ids"][1, 2:].tolist() == [0] * 5
    assert batch["labels"][1].tolist() == [IGNORE, examples[2].input_ids[1]] + [IGNORE] * 5
    assert real_tokens(examples, [[0, 1], [2]]) == 9
    flat = collate(examples, [[0, 1], [2]], pad_id=0, flatten=True)
    assert flat["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 0, 1]]


def test_collate_refuses_an_example_whose_first_token_is_trained():
    with pytest.raises(ValueError, match="first token"):
        collate([Encoded([1, 2], [1, 2])], [[0]], pad_id=0)


def tiny_llama(attn):
    if attn == "packed":
        attn = register()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(config).eval()
    model.config._attn_implementation = attn
    return model


@pytest.mark.parametrize("attn", ["packed", "sdpa", "eager"])
def test_a_packed_example_has_the_same_logits_as_alone(attn):
    model = tiny_llama(attn)
    examples = [example(7, 1), example(12, 40), example(5, 90), example(9, 150)]
    packed = collate(examples, [[0, 1, 2], [3]], pad_id=0)
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits
        start = 0
        for i in (0, 1, 2):
            alone = model(input_ids=torch.tensor([examples[i].input_ids]), use_cache=False).logits[0]
            n = len(examples[i].input_ids)
            torch.testing.assert_close(logits[0, start: start + n], alone, atol=1e-5, rtol=1e-5)
            start += n
        alone = model(input_ids=torch.tensor([examples[3].input_ids]), use_cache=False).logits[0]
        torch.testing.assert_close(logits[1, :9], alone, atol=1e-5, rtol=1e-5)


def test_the_isolation_check_fails_when_positions_do_not_restart():
    """The control: with one running position sequence the second example attends to the first."""
    model = tiny_llama("sdpa")
    examples = [example(7, 1), example(12, 40)]
    packed = collate(examples, [[0, 1]], pad_id=0)
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=torch.arange(19)[None], use_cache=False).logits
        alone = model(input_ids=torch.tensor([examples[1].input_ids]), use_cache=False).logits[0]
    assert not torch.allclose(logits[0, 7:], alone, atol=1e-3)


def test_a_packed_training_loss_equals_the_unpacked_losses():
    model = tiny_llama("sdpa")
    examples = [example(7, 1), example(12, 40), example(5, 90)]
    packed = collate(examples, [[0, 1, 2]], pad_id=0)
    n_items = int((packed["labels"][:, 1:] != IGNORE).sum())
    with torch.no_grad():
        total = model(**packed, num_items_in_batch=torch.tensor(1.0), use_cache=False).loss
        separate = sum(model(**collate(examples, [[i]], pad_id=0), num_items_in_batch=torch.tensor(1.0),
                             use_cache=False).loss for i in range(3))
    torch.testing.assert_close(total, separate, atol=1e-4, rtol=1e-5)
    assert n_items == sum(e.trained_tokens for e in examples)


def test_packed_attention_gives_the_same_gradients_as_masked_sdpa():
    examples = [example(7, 1), example(12, 40), example(5, 90), example(9, 150)]
    batch = collate(examples, [[0, 1], [2, 3]], pad_id=0)
    grads = {}
    for attn in ("packed", "sdpa"):
        model = tiny_llama(attn).train()
        model(**batch, use_cache=False).loss.backward()
        grads[attn] = [p.grad for p in model.parameters()]
    for ours, reference in zip(grads["packed"], grads["sdpa"]):
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)


def test_flattened_micro_batch_under_packed_attention_matches_rows():
    model = tiny_llama("packed")
    examples = [example(7, 1), example(12, 40), example(5, 90), example(9, 150)]
    rows = collate(examples, [[0, 1], [2, 3]], pad_id=0)
    flat = collate(examples, [[0, 1], [2, 3]], pad_id=0, flatten=True)
    with torch.no_grad():
        a = model(**rows, num_items_in_batch=torch.tensor(1.0), use_cache=False).loss
        b = model(**flat, num_items_in_batch=torch.tensor(1.0), use_cache=False).loss
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


def test_packed_attention_decodes_like_sdpa_with_a_cache():
    prompt = torch.tensor([example(11, 3).input_ids])
    outputs = {}
    for attn in ("packed", "sdpa"):
        model = tiny_llama(attn)
        model.generation_config.pad_token_id = 0
        outputs[attn] = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=True)
    assert outputs["packed"].tolist() == outputs["sdpa"].tolist()


def test_segment_bounds_follow_position_restarts():
    assert segment_bounds(torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])) == [[(0, 3), (3, 5), (5, 9)]]
    assert segment_bounds(torch.tensor([[5, 6, 7]])) == [[(0, 3)]]


def reference_varlen(query, key, value, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1),
                     enable_gqa=False):
    """torch's varlen flash attention, written with SDPA so the GPU path's flattening can be checked on a CPU."""
    assert window_size == (-1, 0) and cu_q is cu_k
    bounds = cu_q.tolist()
    parts = []
    for start, end in zip(bounds, bounds[1:]):
        q, k, v = (t[start:end].transpose(0, 1)[None] for t in (query, key, value))
        parts.append(torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=scale, enable_gqa=enable_gqa)[0].transpose(0, 1))
    return torch.cat(parts)


def test_the_gpu_varlen_path_matches_the_per_segment_path(monkeypatch):
    import synth.training.attention as attention
    import torch.nn.attention.varlen as varlen

    examples = [example(7, 1), example(12, 40), example(5, 90), example(9, 150)]
    batch = collate(examples, [[0, 1], [2, 3]], pad_id=0)
    model = tiny_llama("packed")
    with torch.no_grad():
        per_segment = model(**batch, use_cache=False).logits
        monkeypatch.setattr(attention, "_varlen_available", lambda query: True)
        monkeypatch.setattr(varlen, "varlen_attn", reference_varlen)
        via_varlen = model(**batch, use_cache=False).logits
    torch.testing.assert_close(via_varlen, per_segment, atol=1e-5, rtol=1e-5)
    assert not attention._varlen_failed


def test_a_gpu_that_refuses_varlen_falls_back_to_exact_attention(monkeypatch):
    import synth.training.attention as attention

    examples = [example(7, 1), example(12, 40)]
    batch = collate(examples, [[0, 1]], pad_id=0)
    model = tiny_llama("packed")
    with torch.no_grad():
        expected = model(**batch, use_cache=False).logits
        monkeypatch.setattr(attention, "_varlen_available", lambda query: not attention._varlen_failed)
        monkeypatch.setattr(attention, "_varlen_failed", [])
        got = model(**batch, use_cache=False).logits             # the CPU has no flash kernel: it refuses
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert attention._varlen_failed

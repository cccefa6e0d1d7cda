"""The PyTorch encoder-decoder: parity with transformers' MarianMTModel, names, cache, padding.

The reference is a random tiny ``MarianMTModel`` (no download) whose weights, layer norms and
final_logits_bias are perturbed so nothing is at its trivial initial value; our model loads its
state dict by name and must give the same logits and the same greedy ids.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig, MarianConfig, MarianMTModel

from convert.seq2seq_config import Seq2SeqConfig
from training.seq2seq_model import Seq2SeqModel, greedy_decode

VOCAB, PAD, EOS = 61, 60, 0  # Marian's layout: </s> = 0, <pad> = the last id
LOGIT_TOLERANCE = 1e-5


def _marian(share: bool, activation: str) -> MarianMTModel:
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=32, encoder_layers=2,
        decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=2,
        encoder_ffn_dim=48, decoder_ffn_dim=40, max_position_embeddings=64,
        share_encoder_decoder_embeddings=share, activation_function=activation,
        scale_embedding=True, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:
                continue  # the fixed sinusoids (a frozen parameter in transformers)
            parameter.add_(torch.randn_like(parameter) * (0.3 if "norm" in name else 0.5))
        model.final_logits_bias.normal_()
    return model


def _ours(reference: MarianMTModel) -> Seq2SeqModel:
    model = Seq2SeqModel(Seq2SeqConfig.from_marian(reference.config.to_dict())).eval()
    state = {k: v for k, v in reference.state_dict().items() if "embed_positions" not in k}
    model.load_state_dict(state, strict=True)  # every Marian name, nothing else
    return model


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, PAD, (3, 9), generator=generator)
    ids[:, -1] = EOS
    mask = torch.ones_like(ids)
    ids[1, 5], ids[1, 6:], mask[1, 6:] = EOS, PAD, 0  # a shorter, right-padded sentence
    decoder = torch.randint(1, PAD, (3, 7), generator=generator)
    decoder[:, 0] = PAD
    return ids, mask, decoder


@pytest.mark.parametrize(("share", "activation"), [(True, "swish"), (False, "gelu"),
                                                   (True, "relu")])
def test_post_norm_logits_match_marian(share: bool, activation: str) -> None:
    reference = _marian(share, activation)
    model = _ours(reference)
    assert not model.config.normalize_before
    ids, mask, decoder = _batch()
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder).logits
        got = model(ids, mask, decoder)
    assert got.shape == (3, 7, VOCAB)
    assert expected.abs().max() > 1  # not a degenerate comparison
    torch.testing.assert_close(got, expected, rtol=0, atol=LOGIT_TOLERANCE)


def test_greedy_ids_match_marian_generate() -> None:
    reference = _marian(True, "swish")
    model = _ours(reference)
    ids, mask, _ = _batch()
    settings = GenerationConfig(max_new_tokens=12, num_beams=1, do_sample=False,
                                bad_words_ids=[[PAD]], decoder_start_token_id=PAD,
                                eos_token_id=EOS, pad_token_id=PAD)
    reference.generation_config.forced_eos_token_id = None  # MarianConfig's default forces it
    with torch.no_grad():
        generated = reference.generate(input_ids=ids, attention_mask=mask,
                                       generation_config=settings)
    expected = []
    for row in generated.tolist():
        tokens = row[1:]  # without the start token
        expected.append(tokens[:tokens.index(EOS)] if EOS in tokens else tokens)
    sources = [ids[0].tolist(), ids[1, :6].tolist(), ids[2].tolist()]
    got = greedy_decode(model, sources, [12, 12, 12])
    assert got == expected
    assert len(set(map(tuple, got))) > 1  # the sentences do translate differently


def _pre_norm(share: bool = True) -> Seq2SeqModel:
    torch.manual_seed(3)
    config = Seq2SeqConfig(vocab_size=50, d_model=32, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=4, decoder_attention_heads=4,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=40,
                           normalize_before=True, share_embeddings=share)
    return Seq2SeqModel(config).eval()


def test_state_dict_names_are_marian_plus_final_norms() -> None:
    names = set(_pre_norm().state_dict())
    marian = set(_marian(True, "swish").state_dict()) - {
        "model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"}
    assert {n for n in marian if ".layers.2." not in n and ".layers.1." not in n} <= names | {
        n for n in marian if "layers" in n}
    extra = names - {n.replace("layers.2", "layers.1") for n in marian}
    assert extra == {"model.encoder.layer_norm.weight", "model.encoder.layer_norm.bias",
                     "model.decoder.layer_norm.weight", "model.decoder.layer_norm.bias"}
    assert not any("embed_positions" in n for n in names)  # fixed sinusoids, not weights


def test_tied_and_separate_embeddings() -> None:
    tied = _pre_norm(share=True)
    shared = tied.model.shared.weight
    for other in (tied.model.encoder.embed_tokens.weight, tied.model.decoder.embed_tokens.weight,
                  tied.lm_head.weight):
        assert other is shared
    separate = _pre_norm(share=False)
    assert "model.shared.weight" not in separate.state_dict()
    assert separate.model.encoder.embed_tokens.weight is not \
        separate.model.decoder.embed_tokens.weight
    assert separate.lm_head.weight is not separate.model.decoder.embed_tokens.weight


def test_cached_decoding_equals_full_recompute() -> None:
    model = _pre_norm()
    ids = torch.tensor([[5, 6, 7, 8, 1], [9, 10, 1, 0, 0]])
    mask = (torch.arange(5) < torch.tensor([[5], [3]])).long()
    decoder = torch.tensor([[0, 11, 12, 13, 14, 15], [0, 16, 17, 18, 19, 20]])
    with torch.no_grad():
        full = model(ids, mask, decoder)
        cross = model.cross_kv(model.encode(ids, mask))
        past, steps = None, []
        for t in range(decoder.shape[1]):
            logits, past = model.decode(decoder[:, t:t + 1], cross, mask, past)
            steps.append(logits)
        # Two tokens at once after a cache: the causal offset must be right too.
        _, head = model.decode(decoder[:, :2], cross, mask)
        two, _ = model.decode(decoder[:, 2:4], cross, mask, head)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)
    torch.testing.assert_close(two, full[:, 2:4], rtol=0, atol=1e-5)


def test_padding_does_not_change_a_sentence() -> None:
    model = _pre_norm()
    alone = torch.tensor([[5, 6, 1]])
    padded = torch.tensor([[5, 6, 1, 0, 0], [7, 8, 9, 10, 1]])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    decoder = torch.tensor([[0, 3, 4]])
    with torch.no_grad():
        single = model(alone, torch.ones_like(alone), decoder)
        batched = model(padded, mask, decoder.expand(2, -1))[:1]
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)
    assert greedy_decode(model, [[5, 6, 1]], [6]) == greedy_decode(
        model, [[5, 6, 1], [7, 8, 9, 10, 1]], [6, 6])[:1]


def test_greedy_decode_respects_limits_and_never_emits_pad() -> None:
    model = _pre_norm()
    with torch.no_grad():
        model.final_logits_bias[0, 0] = 100.0  # pad would win every step if it were allowed
    out = greedy_decode(model, [[5, 6, 1], [7, 1]], [4, 2])
    assert [len(o) for o in out] == [4, 2]  # no eos is likely: the limits end them
    assert all(0 not in o for o in out)
    assert greedy_decode(model, [[5, 1]], [0]) == [[]]


def test_too_long_sequences_are_refused() -> None:
    model = _pre_norm()
    with pytest.raises(ValueError, match="exceeds max_position_embeddings 40"):
        model(torch.ones(1, 41, dtype=torch.long), torch.ones(1, 41, dtype=torch.long),
              torch.zeros(1, 2, dtype=torch.long))

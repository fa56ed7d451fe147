"""Rollouts: KV-cache sampling agrees with full re-scoring, stops at end of turn, top-p, seeds."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sdtheory.lm import models, rollout  # noqa: E402
from sdtheory.lm.tasks import chat_prompt_ids  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    tok = models.tiny_tokenizer()
    model = models.small_model(tok, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
    prompts = [
        chat_prompt_ids(tok, [{"role": "user", "content": q}])
        for q in ("1 + 2 =", "What is 17 + 25? Solve step by step.")
    ]
    return tok, model, prompts


def _sample(setup, **kw):
    tok, model, prompts = setup
    args = dict(
        max_new_tokens=10,
        stop_token_ids=rollout.stop_ids(tok),
        pad_id=tok.pad_token_id,
        temperature=1.0,
        seed=0,
        k=3,
    )
    args.update(kw)
    return rollout.sample(model, prompts, **args)


def test_sampled_logprobs_match_full_rescoring(setup):
    """Cached incremental decoding with left padding = one full forward of prompt + completion."""
    tok, model, _ = setup
    ro = _sample(setup)
    with torch.no_grad():
        lg = rollout.completion_logits(model, ro.prompts, ro.completions, ro.completion_mask)
    lp = torch.log_softmax(lg, -1).gather(-1, ro.completions[..., None]).squeeze(-1)
    m = ro.completion_mask
    assert ro.completions.shape == (6, ro.completions.shape[1]) and m.any()
    assert torch.allclose(lp[m], ro.logprobs[m], atol=1e-4)  # fp32 roundoff of two code paths
    assert (ro.logprobs[~m] == 0).all() and (ro.logprobs[m] <= 0).all()
    assert ro.group.tolist() == [0, 0, 0, 1, 1, 1]


def test_greedy_matches_transformers_generate(setup):
    tok, model, prompts = setup
    ro = _sample(setup, temperature=0.0, k=1, max_new_tokens=8)
    for i, p in enumerate(prompts):
        ref = model.generate(
            torch.tensor([p]),
            max_new_tokens=8,
            do_sample=False,
            eos_token_id=rollout.stop_ids(tok),
            pad_token_id=tok.pad_token_id,
        )
        ref = ref[0, len(p) :].tolist()
        got = ro.completions[i][ro.completion_mask[i]].tolist()
        assert got == ref


def test_rows_stop_at_end_of_turn_and_pad_after():
    tok = models.tiny_tokenizer()
    model = models.small_model(tok, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1)
    with torch.no_grad():  # make end-of-turn overwhelmingly likely after two tokens
        model.lm_head.weight.zero_()
        model.model.embed_tokens.weight.zero_()
    eos = tok.eos_token_id
    ro = rollout.sample(
        model, [[1, 5, 6]], max_new_tokens=6, stop_token_ids=[eos], pad_id=eos, temperature=1.0, k=4
    )
    for row, m in zip(ro.completions, ro.completion_mask, strict=True):
        n = int(m.sum())
        stops = (row[:n] == eos).nonzero().flatten().tolist()
        assert stops in ([], [n - 1])  # a stop token can only be the last kept token
        if stops:
            assert (row[n:] == eos).all() and not m[n:].any()


def test_generation_runs_on_while_other_processes_generate(setup):
    """`all_done` (FSDP: every process runs the same forward passes): rows that stopped get pad
    tokens while generation goes on, and the live tokens are those of a solo run."""
    tok, model, _ = setup
    # every other token id stops a row: rows stop after a few tokens, at different steps
    stops, pad = list(range(0, len(tok), 2)), tok.pad_token_id
    args = dict(max_new_tokens=12, stop_token_ids=stops, pad_id=pad, temperature=1.0, k=4)
    solo = rollout.sample(model, [[1, 5, 6]], **args)
    calls = []

    def others_still_going(done):  # another process needs every one of the 12 steps
        calls.append(bool(done.all()))
        return False

    synced = rollout.sample(model, [[1, 5, 6]], **args, all_done=others_still_going)
    t = solo.completions.shape[1]
    assert len(set(solo.completion_mask.sum(1).tolist())) > 1  # rows stopped at different steps
    assert t < 12 and synced.completions.shape[1] == 12 and len(calls) == 12 and calls[-1]
    assert torch.equal(synced.completions[:, :t], solo.completions)
    assert torch.equal(synced.completion_mask[:, :t], solo.completion_mask)
    assert not synced.completion_mask[:, t:].any() and (synced.completions[:, t:] == pad).all()
    assert torch.equal(synced.logprobs[:, :t], solo.logprobs)
    assert (synced.logprobs[:, t:] == 0).all()


def test_row_sample_independent_of_batch_composition(setup):
    tok, model, prompts = setup
    both = _sample(setup, row_seeds=[10, 11, 12, 20, 21, 22])
    alone = rollout.sample(
        model,
        prompts[1:],
        max_new_tokens=10,
        stop_token_ids=rollout.stop_ids(tok),
        pad_id=tok.pad_token_id,
        seed=0,
        row_seeds=[20, 21, 22],
        k=3,
    )
    for j in range(3):
        m = alone.completion_mask[j]
        assert torch.equal(both.completions[3 + j][: m.numel()][m], alone.completions[j][m])


def test_seed_determinism(setup):
    a, b, c = _sample(setup, seed=1), _sample(setup, seed=1), _sample(setup, seed=2)
    assert torch.equal(a.completions, b.completions)
    assert not torch.equal(a.completions, c.completions)


def test_top_p_filter_keeps_smallest_nucleus():
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    out = rollout._filter_top_p(logp, 0.75)  # 0.5 + 0.3 >= 0.75: keep two tokens
    assert torch.isinf(out[0, 2:]).all()
    assert torch.allclose(out[0, :2].exp(), torch.tensor([0.625, 0.375]))
    assert torch.equal(rollout._filter_top_p(logp, 1.0), logp)


def test_top_p_sampling_never_leaves_nucleus(setup):
    ro = _sample(setup, top_p=0.3, temperature=1.0)
    m = ro.completion_mask
    # the sampled token's mass under the filtered distribution is at least its unfiltered mass
    assert (ro.sample_logprobs[m] >= ro.logprobs[m] - 1e-5).all()


def test_pass_rates():
    r = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    g = torch.tensor([0, 0, 1, 1, 2, 2])
    assert rollout.pass_rates(r, g).tolist() == [0.5, 1.0, 0.0]


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(top_p=0.0), "top_p"),
        (dict(k=0), "k"),
        (dict(temperature=-1.0), "temperature"),
    ],
)
def test_sample_rejects_bad_arguments(setup, kw, name):
    with pytest.raises(ValueError, match=name):
        _sample(setup, **kw)


@pytest.mark.parametrize("width", [1, 10])
def test_shared_prompts_score_as_separate_rows(setup, width):
    """Encoding each distinct prompt once and reusing its cache (rows in any order, prompts of
    different lengths, one-token completions) gives the hidden states and logits of one full
    forward per row, to float32 rounding."""
    _, model, _ = setup
    ro = _sample(setup, max_new_tokens=width)
    perm = torch.tensor([4, 0, 2, 5, 1, 3])  # the k rows of a prompt are not adjacent
    prompts = [ro.prompts[i] for i in perm]
    comp, mask = ro.completions[perm], ro.completion_mask[perm]
    with torch.no_grad():
        for fn in (rollout.completion_hidden, rollout.completion_logits):
            a = fn(model, prompts, comp, mask)
            b = fn(model, prompts, comp, mask, share_prompts=True)
            assert a.shape == b.shape
            torch.testing.assert_close(a[mask], b[mask], rtol=1e-5, atol=1e-5)

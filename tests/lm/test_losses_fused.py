"""The chunked fused linear loss against autograd of the plain version (`distillation_loss`)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory.lm.losses import distillation_loss, fused_linear_distillation_loss  # noqa: E402

CASES = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("tvd", {}),
    ("skew_kl", {"alpha": 0.1}),
    ("skew_kl", {"alpha": 0.0}),
    ("skew_kl", {"alpha": 1.0}),
    ("jsd", {"beta": 0.5}),
    ("jsd", {"beta": 0.1}),
    ("jsd", {"beta": 0.0}),
    ("jsd", {"beta": 0.3, "normalized": True}),
    ("jsd", {"beta": 0.0, "normalized": True}),
    ("jsd", {"beta": 1.0, "normalized": True}),
]
IDS = [f"{d}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for d, kw in CASES]
B, T, HS, HT, V = 3, 11, 6, 5, 37  # odd sizes; V prime


def _problem(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    hs, ws = r(B, T, HS), r(V, HS, scale=1.5)
    ht, wt = r(B, T, HT), r(V, HT, scale=1.5)
    m = torch.zeros(B, T, dtype=torch.bool)
    m[0, 2:9] = True
    m[1, 4:] = True
    m[2, 1:3] = True
    w = (0.5 + torch.rand(B, generator=g, dtype=torch.float64)).to(dtype)
    return hs, ws, ht, wt, m, w


def _plain_and_fused(hs, ws, ht, wt, m, w, *, chunk_size=4, force_autograd=False, **kw):
    """Loss and gradients (hidden, weight, sequence weights) of both versions."""
    out = []
    for fused in (False, True):
        a = hs.clone().requires_grad_(True)
        b = ws.clone().requires_grad_(True)
        c = w.clone().requires_grad_(True)
        if fused:
            loss = fused_linear_distillation_loss(
                a,
                b,
                ht,
                wt,
                m,
                chunk_size=chunk_size,
                weights=c,
                _force_autograd=force_autograd,
                **kw,
            )
        else:
            loss = distillation_loss(a @ b.T, ht @ wt.T, m, weights=c, **kw)
        loss.backward()
        out.append((loss.detach(), a.grad, b.grad, c.grad))
    return out


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "sum"])
def test_fused_matches_plain_float64(divergence, kw, reduction):
    hs, ws, ht, wt, m, w = _problem()
    plain, fused = _plain_and_fused(
        hs, ws, ht, wt, m, w, divergence=divergence, temperature=0.9, reduction=reduction, **kw
    )
    for x, y in zip(fused, plain, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("divergence", "kw"), CASES[:4] + CASES[6:7] + CASES[9:10])
@pytest.mark.parametrize(("support", "k"), [("teacher_topk", 5), ("student_topk_tail", 5)])
def test_fused_top_k_supports_match_plain(divergence, kw, support, k):
    hs, ws, ht, wt, m, w = _problem(seed=1)
    plain, fused = _plain_and_fused(
        hs, ws, ht, wt, m, w, divergence=divergence, support=support, k=k, **kw
    )
    for x, y in zip(fused, plain, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=IDS)
def test_closed_form_chunks_equal_autograd_chunks(divergence, kw):
    hs, ws, ht, wt, m, w = _problem(seed=2)
    kwargs = {"divergence": divergence, "temperature": 1.7, **kw}
    _, analytic = _plain_and_fused(hs, ws, ht, wt, m, w, **kwargs)
    _, auto = _plain_and_fused(hs, ws, ht, wt, m, w, force_autograd=True, **kwargs)
    for x, y in zip(analytic, auto, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
@pytest.mark.parametrize("block_rows", [1, 3, None])
@pytest.mark.parametrize("support", ["full", "student_topk_tail"])
def test_chunk_and_block_sizes_do_not_change_the_result(
    chunk_size, block_rows, support, monkeypatch
):
    from sdtheory.lm.losses import _fused

    hs, ws, ht, wt, m, w = _problem(seed=3)
    kw = {"divergence": "jsd", "support": support, "k": None if support == "full" else 4}
    plain, _ = _plain_and_fused(hs, ws, ht, wt, m, w, **kw)
    if block_rows is not None:  # rows per elementwise block inside a chunk
        monkeypatch.setattr(_fused, "_BLOCK_ELEMENTS", block_rows * V)
    _, got = _plain_and_fused(hs, ws, ht, wt, m, w, chunk_size=chunk_size, **kw)
    for x, y in zip(got, plain, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    ("dtype", "tol"),
    [
        (torch.float32, {"rtol": 5e-4, "atol": 1e-5}),  # Liger fp32 policy (testing/asserts.py)
        (torch.bfloat16, {"rtol": 5e-1, "atol": 5e-2}),  # Liger bf16 policy
    ],
)
def test_fused_low_precision_against_plain_float32(dtype, tol):
    hs, ws, ht, wt, m, w = _problem(seed=4, dtype=dtype)
    plain, _ = _plain_and_fused(
        hs.float(), ws.float(), ht.float(), wt.float(), m, w.float(), divergence="jsd"
    )
    _, fused = _plain_and_fused(hs, ws, ht, wt, m, w, divergence="jsd")
    assert fused[0].dtype == torch.float32 and fused[1].dtype == dtype
    for x, y in zip(fused, plain, strict=True):
        torch.testing.assert_close(x.float(), y, **tol)


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_fused_teacher_equal_student_gives_exact_zero(divergence, kw, dtype):
    """Self-distillation with the same hidden states and the same lm_head: exactly 0 and 0."""
    hs, ws, _, _, m, _ = _problem(seed=5, dtype=dtype)
    h = hs.clone().requires_grad_(True)
    w = ws.clone().requires_grad_(True)
    loss = fused_linear_distillation_loss(h, w, h, w, m, chunk_size=4, divergence=divergence, **kw)
    loss.backward()
    assert loss.item() == 0.0
    assert (h.grad == 0).all() and (w.grad == 0).all()


def test_fused_masked_positions_and_teacher_get_nothing():
    hs, ws, ht, wt, m, w = _problem(seed=6)
    a = hs.clone().requires_grad_(True)
    t = ht.clone().requires_grad_(True)
    tw = wt.clone().requires_grad_(True)
    base = fused_linear_distillation_loss(a, ws, t, tw, m, divergence="reverse_kl")
    base.backward()
    assert t.grad is None and tw.grad is None  # the teacher is a constant
    assert (a.grad[~m] == 0).all()
    hs2, ht2 = hs.clone(), ht.clone()
    hs2[~m] = 1e4
    ht2[~m] = float("nan")
    a2 = hs2.requires_grad_(True)
    other = fused_linear_distillation_loss(a2, ws, ht2, wt, m, divergence="reverse_kl")
    other.backward()
    assert other.item() == base.item()
    assert torch.equal(a2.grad, a.grad)


def test_fused_empty_mask_is_zero():
    hs, ws, ht, wt, _, _ = _problem()
    a = hs.clone().requires_grad_(True)
    b = ws.clone().requires_grad_(True)
    loss = fused_linear_distillation_loss(a, b, ht, wt, torch.zeros(B, T), divergence="jsd")
    loss.backward()
    assert loss.item() == 0.0 and (a.grad == 0).all() and (b.grad == 0).all()


def test_fused_gradient_accumulation_equivalence():
    """Batch 8 x accumulation 1 == batch 1 x accumulation 8 with reduction='sum', num_items."""
    g = torch.Generator().manual_seed(7)
    hs = torch.randn(8, 9, HS, generator=g, dtype=torch.float64)
    ht = torch.randn(8, 9, HT, generator=g, dtype=torch.float64)
    ws = torch.randn(V, HS, generator=g, dtype=torch.float64)
    wt = torch.randn(V, HT, generator=g, dtype=torch.float64)
    m = torch.rand(8, 9, generator=g) < 0.7
    n = int(m.sum())
    kw = {"divergence": "jsd", "beta": 0.7, "reduction": "sum", "num_items": n, "chunk_size": 5}
    big = ws.clone().requires_grad_(True)
    fused_linear_distillation_loss(hs, big, ht, wt, m, **kw).backward()
    small = ws.clone().requires_grad_(True)
    for i in range(8):
        fused_linear_distillation_loss(
            hs[i : i + 1], small, ht[i : i + 1], wt, m[i : i + 1], **kw
        ).backward()
    torch.testing.assert_close(small.grad, big.grad, rtol=1e-12, atol=1e-15)


def test_fused_bad_input_raises():
    hs, ws, ht, wt, m, _ = _problem()
    with pytest.raises(ValueError, match="chunk_size"):
        fused_linear_distillation_loss(hs, ws, ht, wt, m, chunk_size=0)
    with pytest.raises(ValueError, match="student_weight"):
        fused_linear_distillation_loss(hs, ws[:, :-1], ht, wt, m)
    with pytest.raises(ValueError, match="teacher_weight"):
        fused_linear_distillation_loss(hs, ws, ht, wt[:-1], m)
    with pytest.raises(ValueError, match="teacher_hidden"):
        fused_linear_distillation_loss(hs, ws, ht[:, :-1], wt, m)
    with pytest.raises(ValueError, match="mask"):
        fused_linear_distillation_loss(hs, ws, ht, wt, m[:, :-1])
    with pytest.raises(ValueError, match="beta"):
        fused_linear_distillation_loss(hs, ws, ht, wt, m, divergence="jsd", beta=2.0)
    with pytest.raises(ValueError, match="reduction"):
        fused_linear_distillation_loss(hs, ws, ht, wt, m, reduction="mean")


@given(
    b=st.integers(1, 3),
    t=st.integers(1, 9),
    v=st.integers(2, 19),
    chunk=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    divergence=st.sampled_from(["forward_kl", "reverse_kl", "jsd", "skew_kl", "tvd"]),
    beta=st.floats(0.0, 1.0),
    normalized=st.booleans(),
    reduction=st.sampled_from(["token_mean", "sequence_mean", "sum"]),
)
def test_fused_equals_plain_on_random_shapes(
    b, t, v, chunk, seed, divergence, beta, normalized, reduction
):
    g = torch.Generator().manual_seed(seed)
    hs = torch.randn(b, t, 4, generator=g, dtype=torch.float64)
    ht = torch.randn(b, t, 3, generator=g, dtype=torch.float64)
    ws = 2 * torch.randn(v, 4, generator=g, dtype=torch.float64)
    wt = 2 * torch.randn(v, 3, generator=g, dtype=torch.float64)
    m = torch.rand(b, t, generator=g) < 0.6
    w = torch.rand(b, t, generator=g, dtype=torch.float64)
    kw = {"divergence": divergence, "beta": beta, "normalized": normalized, "alpha": beta}
    plain, fused = _plain_and_fused(
        hs, ws, ht, wt, m, w, chunk_size=chunk, reduction=reduction, **kw
    )
    for x, y in zip(fused, plain, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


def test_fused_extreme_logits_qwen_vocabulary():
    """Logits up to +-1e4 over a 151,936-token vocabulary (Qwen3) on a few tokens."""
    vocab = 151_936
    g = torch.Generator().manual_seed(9)
    hs = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.7, -0.7]]], dtype=torch.float64)
    ht = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [-0.7, 0.7]]], dtype=torch.float64)
    ws = torch.randn(vocab, 2, generator=g, dtype=torch.float64)
    wt = torch.randn(vocab, 2, generator=g, dtype=torch.float64)
    ws[:4] = 1e4  # logits of +-1e4 (and 0) on a few rows
    wt[10:13] = torch.tensor([1e4, -1e4], dtype=torch.float64)
    m = torch.ones(1, 3, dtype=torch.bool)
    w = torch.ones(1, dtype=torch.float64)
    kw = {"divergence": "jsd", "beta": 0.3, "normalized": True}
    plain, fused = _plain_and_fused(hs, ws, ht, wt, m, w, **kw)
    for x, y in zip(fused, plain, strict=True):
        assert torch.isfinite(x).all()
        # hidden gradients sum +-1e4 * 1e-6 terms that cancel: absolute tolerance on that scale
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)
    f32 = [x.float() for x in (hs, ws, ht, wt)]
    plain32, fused32 = _plain_and_fused(*f32, m, w.float(), **kw)
    for x, y, ref in zip(fused32, plain32, plain, strict=True):
        assert torch.isfinite(x).all() and torch.isfinite(y).all()
        # float32 logits of 1e4 carry an absolute rounding of 1e4 * 2**-24 = 6e-4
        torch.testing.assert_close(x.double(), ref, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(y.double(), ref, rtol=1e-3, atol=1e-3)

"""Every method whose loss is a token divergence takes the fused path by default, and it equals
the plain path (logits, `distillation_loss`): loss and every student gradient to 1e-10 in
float64, within the dtype-paired tolerances of `sdtheory.testing.asserts` in float32 and bf16.

Both paths run the method's own `loss` on the same `StepBatch` (same student, teacher, rollouts
and rewards); the verifier gives mixed rewards so that PACED weights, SDPO siblings and SRPO
routes are all non-trivial."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import models  # noqa: E402
from sdtheory.lm.methods import get_method  # noqa: E402
from sdtheory.lm.methods.shared import DivergenceLoss  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from sdtheory.testing.asserts import tolerance  # noqa: E402
from tests.lm._tiny import EvenTask, tiny  # noqa: E402

FAST = tiny(steps=3)
DIVERGENCE_METHODS = {
    "opsd": {},
    "gkd": {},
    "grpo": dict(distill_weight=1.0),  # GRPO mixed with OPSD's divergence
    "paced": dict(paced_alpha=1.0, paced_beta=0.5),
    "taid": {},
    "sdzero": dict(sdzero_srt_steps=0),  # the distillation phase (teacher top-k, FKL + RKL)
    "pidistill": {},
    "piopsd": {},
    "effopd": {},
    "unisd": dict(unisd_clip=0.0, unisd_clip_quantile=0.5),  # the ceiling binds on half
    "vpd": dict(vpd_e_every=1),  # E-step and M-step
    "sdpo": dict(sdpo_feedback=True),
    "srpo": dict(sdpo_feedback=True),
    "atesd": {},
}


def _loss_and_grads(tmp_path, method, fused, dtype, **extra):
    tok = models.tiny_tokenizer()

    def net(seed):
        m = models.small_model(
            tok, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, seed=seed
        )
        return m.to(dtype)

    teacher = net(7) if get_method(method).teacher_kind == "model" else None
    cfg = TrainConfig(
        method=method,
        fused_loss=fused,
        out=str(tmp_path / str(fused)),
        **FAST,
        **DIVERGENCE_METHODS[method],
        **extra,
    )
    tr = Trainer(cfg, model=net(0), tokenizer=tok, teacher_model=teacher, task=EvenTask())
    batch = tr.make_batch(0)
    loss, metrics = tr.method.loss(batch)
    loss.backward()
    grads = [
        torch.zeros(p.shape) if p.grad is None else p.grad.double()
        for p in tr.unwrapped.parameters()
    ]
    return loss.detach().double(), grads, batch.rewards


def test_divergence_methods_default_to_the_fused_path():
    for method in DIVERGENCE_METHODS:
        cfg = TrainConfig(method=method, **FAST)
        assert cfg.loss.fused_loss and DivergenceLoss(cfg, None, 0.5).fused, method


@pytest.mark.parametrize("method", sorted(DIVERGENCE_METHODS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_fused_equals_plain(tmp_path, method, dtype):
    la, ga, ra = _loss_and_grads(tmp_path, method, True, dtype)
    lb, gb, rb = _loss_and_grads(tmp_path, method, False, dtype)
    assert torch.equal(ra, rb) and 0 < ra.mean() < 1  # same rollouts, mixed rewards
    assert float(la) != 0 and any(float(g.abs().max()) > 0 for g in ga)  # not a trivial 0 = 0
    # float64: 1e-10 (the two paths differ only in summation order); float32/bf16: Liger policy
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else tolerance(dtype)
    torch.testing.assert_close(la, lb, **tol)
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize(
    "divergence, beta",
    [("jsd", 0.0), ("jsd", 1.0), ("skew_kl", 0.5), ("tvd", 0.5), ("reverse_kl", 0.5)],
)
def test_fused_equals_plain_for_every_divergence(tmp_path, divergence, beta):
    """OPSD with each divergence (and the JSD at both ends): float64, 1e-10."""
    kw = dict(divergence=divergence, beta=beta)
    la, ga, _ = _loss_and_grads(tmp_path, "opsd", True, torch.float64, **kw)
    lb, gb, _ = _loss_and_grads(tmp_path, "opsd", False, torch.float64, **kw)
    assert float(la) > 0
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12)
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)

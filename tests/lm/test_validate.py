"""`sdtheory validate`: the decision logic of each experiment on inputs whose answer is known, the
exact pieces (block eNTK, shared-prompt logits, gradient Gram factor) against autograd and brute
force, and the `--fast` run that covers every code path end to end (its verdicts are not asserted:
the reduced sizes cannot decide; the committed cpu-long report is in docs/lm/validate.md)."""

import html
import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")
pytest.importorskip("reasoning_gym")
pytest.importorskip("champ_dataset")

import torch  # noqa: E402

from sdtheory import claims  # noqa: E402
from sdtheory.lm import validate  # noqa: E402
from sdtheory.lm.validate import _stats as S  # noqa: E402
from sdtheory.lm.validate import cli  # noqa: E402


def test_parser_and_bad_input():
    ns = cli.build_parser().parse_args(["--scale", "cpu-long", "--only", "krr", "taid", "--fast"])
    assert ns.scale == "cpu-long" and ns.only == ["krr", "taid"] and ns.fast
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--scale", "tpu"])
    with pytest.raises(ValueError, match="scale"):
        validate.run_validation("tpu", "/nonexistent")
    with pytest.raises(ValueError, match="only"):
        validate.run_validation("cpu", "/nonexistent", only=["nope"])
    with pytest.raises(ValueError, match="name"):
        validate.load_experiment("nope")


def test_every_experiment_has_a_size_knob_per_scale_and_registered_claims():
    from sdtheory.claims.catalog import load_all
    from sdtheory.claims.catalog import validate as V

    registry = load_all()
    for name in validate.EXPERIMENTS:
        mod = validate.load_experiment(name)
        assert set(mod.CONFIGS) == {"fast", "cpu", "cpu-long", "gpu"}, name
        assert set(mod.SIZES) == {"cpu", "cpu-long", "gpu"}, name
        assert mod.SIZES["cpu"] < mod.SIZES["cpu-long"] < mod.SIZES["gpu"], name
    used = [v for k, v in vars(V).items() if isinstance(v, claims.Claim)]
    assert len(used) >= 20
    for c in used:
        assert registry[c.id] is c or registry[c.id] == c
        assert c.paper, c.id  # every validate claim is listed on a paper page
        if c.id.startswith("validate.") and c.source.kind == "paper":
            assert '"' in c.source.ref, f"{c.id}: a paper source quotes the words we hold"


# ------------------------------------------------------------------------------ shared statistics


def test_gram_factor_reproduces_inner_products_and_rejects_non_psd():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((7, 30))
    f = S.gram_factor(g @ g.T)
    np.testing.assert_allclose(f @ f.T, g @ g.T, atol=1e-10)
    # the SNR of rows depends only on inner products: the factor gives the gradients' value
    assert math.isclose(S.snr(f), S.snr(g), rel_tol=1e-9)
    with pytest.raises(ValueError, match="PSD"):
        S.gram_factor(-np.eye(3))


def test_signal_and_noise_are_unbiased_and_the_snrs_consistent():
    # g = s u + noise with tr Cov = d sigma^2: E[debiased ||mean||^2] = s^2, E[tr] = d sigma^2
    # (4000 repetitions of n = 8 rows); the ratios are consistent (n = 4000 rows: the SE of
    # ||mean||^2 is 2 s sigma / sqrt(n) = 0.0095, 2.6 % of s^2; tolerance 10 %)
    rng = np.random.default_rng(1)
    d, n, s, sig = 20, 8, 0.6, 0.5
    u = np.zeros(d)
    u[0] = 1.0
    est = np.array([S.signal_noise(s * u + sig * rng.standard_normal((n, d))) for _ in range(4000)])
    se = est.std(0) / math.sqrt(len(est))
    assert abs(est[:, 0].mean() - s**2) < 4 * se[0]
    assert abs(est[:, 1].mean() - d * sig**2) < 4 * se[1]
    big = 4000
    assert math.isclose(
        S.snr(s * u + sig * rng.standard_normal((big, d))), s**2 / (d * sig**2), rel_tol=0.1
    )
    # two strata with signals s and 0, weights (1, 0.5): SNR(w) = (n s)^2 / ((1 + 0.25) n d sig^2)
    w = [1.0, 0.5]
    strata = [s * u + sig * rng.standard_normal((big, d)), sig * rng.standard_normal((big, d))]
    truth = (big * s) ** 2 / ((w[0] ** 2 + w[1] ** 2) * big * d * sig**2)
    assert math.isclose(S.weighted_snr(strata, w), truth, rel_tol=0.1)
    # the common-direction optimum sum_g N_g s_g^2 / v_g
    assert math.isclose(S.optimal_snr(strata), big * s**2 / (d * sig**2), rel_tol=0.1)


def test_stratified_band_is_centred_on_the_estimate_and_covers():
    # the mean difference of two normal strata: the band must cover the truth about 95% of the
    # time (recentring does not move a statistic whose bootstrap is already centred)
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(60):
        a, b = rng.normal(1.0, 1.0, 15), rng.normal(0.0, 1.0, 25)
        band = S.stratified_band([a, b], lambda st: st[0].mean() - st[1].mean(), n_boot=400)
        assert band.lo <= band.estimate <= band.hi
        hits += band.lo <= 1.0 <= band.hi
    assert hits >= 50  # 95 % nominal; 50 of 60 is the binomial 0.1 % tail
    nan = S.stratified_band([np.ones(1), np.ones(3)], lambda st: 0.0)
    assert not nan.finite  # a stratum of one unit cannot be resampled


def test_power_seeds_matches_the_t_formula():
    from scipy import stats

    from sdtheory.lm.validate.opsd import power_seeds

    n = power_seeds(0.05, 0.04)
    q = lambda m: stats.t.ppf(0.975, m - 1) + stats.t.ppf(0.8, m - 1)  # noqa: E731
    assert q(n) * 0.05 / math.sqrt(n) <= 0.04 < q(n - 1) * 0.05 / math.sqrt(n - 1)
    assert power_seeds(0.0, 0.01) == 2
    with pytest.raises(ValueError, match="effect"):
        power_seeds(0.1, 0.0)


# ------------------------------------------------------------------------------ PACED


def _paced_rows(signal, rng, n=120, d=12, k=8):
    """Synthetic units: problem i has gradient signal(p_i) u + noise, with the Gram rows."""
    p = rng.integers(0, k + 1, n) / k
    u = np.zeros(d)
    u[0] = 1.0
    rows = []
    g = {dv: signal(p)[:, None] * u + 0.2 * rng.standard_normal((n, d)) for dv in ("f", "r")}
    for i in range(n):
        r = dict(pass_rate=float(p[i]))
        for key, dv in (("forward_kl", "f"), ("reverse_kl", "r")):
            r[f"gram_{key}"] = [float(g[dv][i] @ g[dv][j]) for j in range(i + 1)]
        rows.append(r)
    return rows


@pytest.mark.parametrize(
    ("signal", "ends"),
    [
        (lambda p: 3 * np.sqrt(p * (1 - p)), "held"),
        (lambda p: 1.0 - 0.9 * np.sin(np.pi * p), "failed"),
    ],
)
def test_paced_ends_decide_a_bell_and_a_trough(tmp_path, signal, ends):
    from sdtheory.lm.validate import paced

    cfg = dataclasses_replace(paced.CONFIGS["cpu"], n_problems=120)
    res = paced.decide(_paced_rows(signal, np.random.default_rng(3)), cfg, tmp_path)
    by = {}
    for r in res:
        by.setdefault(r.claim_id, []).append(r.verdict)
    assert by["paced.snr-collapse-unreachable"] == [ends, ends]
    assert by["paced.snr-collapse-mastered"] == [ends, ends]
    assert set(by["validate.paced-implied-weights-vanish"]) == {ends}
    assert all(v == "held" for v in by["paced.beta-fit-delta"])  # a theorem on measured numbers
    assert (tmp_path / "paced_snr.png").is_file() and (tmp_path / "metrics.json").is_file()


def test_paced_needs_scale_when_bins_are_thin(tmp_path):
    from sdtheory.lm.validate import paced

    rows = _paced_rows(lambda p: 3 * p * (1 - p), np.random.default_rng(4), n=12)
    res = paced.decide(rows, paced.CONFIGS["cpu"], tmp_path)
    assert {r.verdict for r in res if r.claim_id.startswith("paced.snr")} == {"needs-scale"}
    assert all(r.needs == "cpu-long" for r in res if r.verdict == "needs-scale")


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_graded_sum_task_levels_and_determinism():
    from sdtheory.lm.tasks import GradedSumTask, make_task

    t = make_task("graded_sum")
    a, b = t.problems(20, seed=1), t.problems(20, seed=1)
    assert [p.question for p in a] == [p.question for p in b]
    assert {p.meta["level"] for p in a[:10]} == set(range(len(t.levels)))
    for p in a:
        expr = p.meta["expression"]
        assert p.question == GradedSumTask.QUESTION.format(expr)
        assert int(p.answer) == eval(expr)  # noqa: S307 - our own digits and +/- only
        assert t.verify(f"so the answer is {p.answer}.", p) == 1.0
        lvl = t.levels[p.meta["level"]]
        assert len(expr.split()) == 2 * lvl[0] - 1
        if lvl[2] == "+":
            assert "-" not in expr
    easy = make_task("graded_sum_easy")
    assert all(len(p.meta["expression"].split()[0]) == 1 for p in easy.problems(12))
    with pytest.raises(ValueError, match="levels"):
        GradedSumTask(levels=((1, 1, "+"),))
    with pytest.raises(ValueError, match="weights"):
        GradedSumTask(levels=((2, 1, "+"),), weights=(0.0,))


# ------------------------------------------------------------------------------ kernel (digits)


def test_kernel_metrics_and_decide_on_known_surfaces(tmp_path):
    from sdtheory.lm.validate import kernel

    pred = np.array([[0.7, 0.6, 0.55], [0.7, 0.65, 0.6]])
    m = kernel.metrics(pred, pred * 1.01)
    assert math.isclose(m["deviation"], 0.01, rel_tol=1e-12) and m["rho"] == 1.0
    assert m["regret"] == 0.0 and m["best_predicted"] == m["best_trained"] == 2
    cfg = kernel.CONFIGS["fast"]
    rows = []
    rng = np.random.default_rng(5)
    for seed in range(4):
        for regime, kind, width in kernel._runs(cfg):
            dev = (0.1 / math.sqrt(width)) if regime == "lazy" else 0.3
            p = 0.6 + 0.1 * rng.random((len(cfg.alphas), cfg.steps))
            key = dict(regime=regime, kind=kind, width=width, seed=seed)
            rows.append(dict(stage="predicted", mse=p.tolist(), **key))
            t = p * (1 + dev)
            rows.append(dict(stage="trained", mse=t.tolist(), grad_rel=[[0.0]], **key))
    res = kernel.decide(rows, cfg, tmp_path)
    verdicts = {r.claim_id: r.verdict for r in res if not r.details.startswith("CNN")}
    assert verdicts["krr.network-deviation-shrinks"] == "held"  # deviation ~ width^-1/2
    assert verdicts["validate.kernel-rich-departs"] == "held"  # 0.3 > 0.05
    assert verdicts["validate.kernel-lazy-agreement"] == "held"  # 0.1/sqrt(32) < 0.05
    assert verdicts["validate.kernel-rank-correlation"] == "held"
    assert verdicts["validate.kernel-best-cell"] == "held"
    assert (tmp_path / "kernel_surfaces.png").is_file()


# ------------------------------------------------------------------------------ exact pieces (torch)


@pytest.fixture(scope="module")
def tiny():
    from sdtheory.lm.models import load_smollm2, small_model

    _, tok = load_smollm2()
    model = small_model(tok, seed=1, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok


def test_block_kernel_jvp_vjp_equal_autograd_and_fit_is_stationary(tiny):
    from sdtheory.lm.validate import _block as B
    from sdtheory.lm.validate import _common as C

    model, tok = tiny
    texts = ["1 + 2 = 3", "what is 5 - 7", "hello there friend", "9 9 9", "a b c d e f"]
    ids, mask = C.encode_batch(tok, texts, 12)
    data = B.block_inputs(model, ids, mask, 2)  # batches of 2: the kernel spans batches
    ro = B.Readout(model, torch.randn(32, generator=torch.Generator().manual_seed(0)))
    s = ro.signals(data)
    rows = []
    for i in range(len(texts)):
        for p in ro.params:
            p.requires_grad_(True)
        b, j = divmod(i, 2)
        (h, kw), m = data.batches[b], data.masks[b]
        grads = torch.autograd.grad(ro._out(h, kw, m)[j], ro.params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]).double())
        for p in ro.params:
            p.requires_grad_(False)
    jac = torch.stack(rows)
    ntk = jac @ jac.T
    torch.testing.assert_close(B.kernel(s, s), ntk, rtol=1e-5, atol=1e-6 * float(ntk.abs().max()))
    phi = [0.01 * torch.randn_like(p) for p in ro.params]
    flat = torch.cat([x.reshape(-1) for x in phi]).double()
    torch.testing.assert_close(B.jvp(s, phi), jac @ flat, rtol=1e-4, atol=1e-7)
    c = torch.randn(len(texts), dtype=torch.float64)
    vj = torch.cat([x.reshape(-1) for x in B.vjp(s, c)]).double()
    torch.testing.assert_close(vj, jac.T @ c, rtol=1e-4, atol=1e-6 * float((jac.T @ c).abs().max()))
    t = torch.randn(len(texts), dtype=torch.float64)
    _, rec = B.fit(ro, data, t, 0.1, s["f"].double(), max_iter=10)
    ro.set(None)
    assert rec["stationarity"] < 1e-4
    assert rec["objective"][-1] <= rec["objective"][0]


def test_shared_prompt_logits_equal_the_plain_forward_with_gradients(tiny):
    from sdtheory.lm.rollout import completion_logits, sample, stop_ids
    from sdtheory.lm.validate.paced import prompt_logits, subset

    model, tok = tiny
    prompt = tok("What is 2 + 3? Answer:")["input_ids"]
    ro = sample(
        model,
        [prompt],
        max_new_tokens=5,
        stop_token_ids=stop_ids(tok),
        pad_id=tok.pad_token_id,
        temperature=1.0,
        seed=0,
        k=3,
    )
    m = ro.completion_mask
    a = completion_logits(model, [prompt] * 3, ro.completions, m)
    b = prompt_logits(model, prompt, ro.completions, m)
    torch.testing.assert_close(a[m], b[m], rtol=1e-4, atol=1e-4)
    params = subset(model)
    for p in params:
        p.requires_grad_(True)
    try:

        def loss(logits):
            lp = torch.log_softmax(logits, -1).gather(-1, ro.completions[..., None])[..., 0]
            return lp[m].sum()

        ga = torch.autograd.grad(
            loss(completion_logits(model, [prompt] * 3, ro.completions, m)), params
        )
        gb = torch.autograd.grad(loss(prompt_logits(model, prompt, ro.completions, m)), params)
    finally:
        for p in params:
            p.requires_grad_(False)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ end to end


def test_fast_validation_writes_the_report(tmp_path):
    rc = cli.main(["--scale", "cpu", "--fast", "--out", str(tmp_path)])
    assert rc == 0  # no experiment crashed (failed predictions do not change the exit code)
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    assert "Scale: **cpu (reduced CI version, --fast)**" in md
    for name in validate.EXPERIMENTS:
        mod = validate.load_experiment(name)
        assert mod.TITLE in md and html.escape(mod.TITLE) in page
        run = tmp_path / name
        assert (run / "config.json").is_file() and (run / "checks.json").is_file()
        assert (run / "units.jsonl").is_file(), name  # written as the run goes
        assert list(run.glob("*.png")), name
    results = json.loads((tmp_path / "results.json").read_text())
    assert not any(r["claim_id"].endswith(".run") for r in results), "an experiment crashed"
    assert all(r["scale"] == "lm-fast" for r in results)
    assert {r["verdict"] for r in results} <= set(claims.VERDICTS)
    # the snapshot committed under docs/: small files, figures palette-encoded, links intact
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "snapshot_validate", Path(__file__).parents[2] / "scripts" / "snapshot_validate.py"
    )
    snap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(snap)
    dest = tmp_path / "snapshot"
    files = snap.snapshot(tmp_path, dest)
    assert (dest / "report.md").is_file() and all(f.stat().st_size < 300_000 for f in files)
    for line in (dest / "report.md").read_text().splitlines():
        if line.startswith("!["):
            assert (dest / line[line.index("(") + 1 : -1]).is_file(), line
    from sdtheory import pages

    res = pages.snapshot(tmp_path, "validate-fast", "fast", "CI --fast", root=tmp_path)
    data = json.loads(res.read_text())
    assert data["name"] == "validate-fast" and data["results"]
    assert all(r["paper"] for r in data["results"])  # every validate claim is on a paper page
    # --decide measures nothing: the same verdicts from the recorded units, the measuring times
    rc = cli.main(["--scale", "cpu", "--fast", "--decide", "--out", str(tmp_path)])
    assert rc == 0
    again = json.loads((tmp_path / "results.json").read_text())
    key = lambda r: (r["claim_id"], r["verdict"], r["measured"])  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, results))
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["decide_only"] and timing["budget_s"] is None
    for name in validate.EXPERIMENTS:
        seconds = json.loads((tmp_path / name / "seconds.json").read_text())["seconds"]
        assert timing["seconds"][name] == seconds
    assert cli.main(["--scale", "cpu", "--decide"]) == 2  # --decide needs --out


def test_cpu_scale_turns_an_undecided_band_into_needs_cpu_long():
    from sdtheory.claims import Claim, Source
    from sdtheory.lm.validate import _common as C

    c = Claim("doc.x", "a > b", Source("derived", "test"), "m")
    undecided = claims.check_paired(c, [1.0, 0.0, 2.0], [0.5, 0.5, 0.5])
    held = claims.check_paired(c, [1.0, 1.2, 1.1], [0.5, 0.6, 0.4])
    assert undecided.verdict == "inconclusive"
    cpu = C.with_scale([undecided, held], "cpu")
    assert [r.verdict for r in cpu] == ["needs-scale", "held"]
    assert cpu[0].needs == "cpu-long" and "band" in cpu[0].details
    assert all(r.scale == "lm-cpu" for r in cpu)
    long = C.with_scale([undecided, cpu[0]], "cpu-long")
    assert [r.verdict for r in long] == ["needs-scale", "needs-scale"]
    assert [r.needs for r in long] == ["gpu", "gpu"] and long[0].scale == "lm-cpu-long"
    gpu = C.with_scale([undecided, cpu[0]], "gpu")
    assert gpu[0].verdict == "inconclusive" and gpu[0].scale == "lm-gpu"
    assert gpu[1].verdict == "needs-scale" and gpu[1].needs == "gpu"  # more time at gpu

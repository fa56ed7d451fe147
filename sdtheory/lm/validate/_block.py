r"""One transformer block as a regression model: its empirical NTK and its ridge fit (torch).

The body of the language model below its last block is frozen, so the block's inputs are computed
once (`BlockData`). The model is the scalar readout

$$f(x;\theta)=v^\top\frac1{T_x}\sum_{t\le T_x}\mathrm{norm}\big(\mathrm{block}_\theta(h(x))\big)_t,$$

with the final RMSNorm frozen and $v$ fixed, and $\theta$ every parameter of the block (7 linear
maps without bias and 2 RMSNorm gains). Everything the kernel theory needs is a function of the
per-token inputs $a$ and output gradients $\delta=\partial f/\partial(\text{output})$ of those
modules, captured with hooks in **one** forward and backward pass of $\sum_i f(x_i)$ (the examples
do not interact, so that backward gives every example's own gradient signals):

- linear map $W$: $\partial f_i/\partial W=\sum_t\delta_{it}a_{it}^\top$, so
  $\langle\partial f_i/\partial W,\partial f_j/\partial W\rangle=\sum_{t,s}(a_{it}\!\cdot a_{js})
  (\delta_{it}\!\cdot\delta_{js})$ (the empirical NTK without forming per-example gradients),
  $J\Phi=\sum_t\delta_{it}^\top\Phi a_{it}$ and $J^\top c=\sum_i c_i\sum_t\delta_{it}a_{it}^\top$;
- RMSNorm gain $w$ in $w\odot\hat x$: $\partial f_i/\partial w=\sum_t\hat x_{it}\odot\delta_{it}$.

`fit` solves $\min_\varphi\tfrac12\|f(X;\theta_0+\varphi)-f(X;\theta_0)-t\|^2+\tfrac\lambda2
\|\varphi\|^2$ by damped Gauss–Newton in the dual: $\varphi\leftarrow J^\top(JJ^\top+\lambda I)^{-1}
(t-g+J\varphi)$ at the current point, with step halving while the objective rises. Its fixed points
are exactly the stationary points of the objective ($J^\top(g-t)+\lambda\varphi=0$); the first
step from $\varphi=0$ is the kernel-ridge solution of the linearised block, the closed form's
prediction.
"""

from __future__ import annotations

import dataclasses

import torch

from . import _common as C


@dataclasses.dataclass
class BlockData:
    """Frozen inputs of the last block for a list of texts, in fixed batches."""

    batches: list[tuple[torch.Tensor, dict]]  # (hidden states, layer kwargs) per batch
    masks: list[torch.Tensor]  # (b, T) attention masks per batch

    @property
    def n(self) -> int:
        return sum(m.shape[0] for m in self.masks)


def _linears(block) -> list[tuple[str, torch.nn.Linear]]:
    mods = [(n, m) for n, m in block.named_modules() if isinstance(m, torch.nn.Linear)]
    for n, m in mods:
        if m.bias is not None:
            raise ValueError(f"block module {n} has a bias; only bias-free linear maps are handled")
    return mods


def _norms(block) -> list[tuple[str, torch.nn.Module]]:
    return [
        (n, m)
        for n, m in block.named_modules()
        if hasattr(m, "variance_epsilon") and hasattr(m, "weight")
    ]


def parameters(block) -> list[torch.nn.Parameter]:
    """The block's parameters in the order `fit` and the kernel use (linear maps, then gains)."""
    return [m.weight for _, m in _linears(block)] + [m.weight for _, m in _norms(block)]


@torch.no_grad()
def block_inputs(model, ids: torch.Tensor, mask: torch.Tensor, batch: int) -> BlockData:
    """Run the frozen body once and keep the last block's inputs (hidden states and kwargs)."""
    layer = model.model.layers[-1]
    got = {}

    def pre(mod, args, kwargs):
        got["h"] = (args[0] if args else kwargs["hidden_states"]).detach().float()
        got["kw"] = {
            k: kwargs[k]
            for k in ("attention_mask", "position_embeddings", "position_ids")
            if k in kwargs
        }
        raise _Stop

    handle = layer.register_forward_pre_hook(pre, with_kwargs=True)
    batches, masks = [], []
    try:
        for i in range(0, ids.shape[0], batch):
            m = mask[i : i + batch].to(C.device())
            try:
                model.model(input_ids=ids[i : i + batch].to(C.device()), attention_mask=m)
            except _Stop:
                pass
            batches.append((got["h"], got["kw"]))
            masks.append(m)
    finally:
        handle.remove()
    return BlockData(batches, masks)


class _Stop(Exception):
    """Raised by the pre-hook: the body above the last block's input is not needed."""


class Readout:
    """The block, the frozen final norm and the readout vector `v` as a function of the data."""

    def __init__(self, model, v: torch.Tensor):
        self.block = model.model.layers[-1]
        self.norm = model.model.norm
        self.v = v.float()
        self.linears = _linears(self.block)
        self.norms = _norms(self.block)
        self.params = parameters(self.block)
        self.theta0 = [p.detach().clone() for p in self.params]

    def _out(self, h, kw, m):
        y = self.block(h, **kw)
        y = y[0] if isinstance(y, tuple) else y
        z = self.norm(y)
        w = m.to(z.dtype).unsqueeze(-1)
        return ((z * w).sum(1) / w.sum(1)) @ self.v

    @torch.no_grad()
    def outputs(self, data: BlockData) -> torch.Tensor:
        """f(x) for every text (n,), at the block's current parameters."""
        return torch.cat(
            [self._out(h, kw, m) for (h, kw), m in zip(data.batches, data.masks, strict=True)]
        )

    def set(self, phi: list[torch.Tensor] | None) -> None:
        """Block parameters theta_0 + phi (phi None: theta_0)."""
        with torch.no_grad():
            for p, p0, d in zip(
                self.params, self.theta0, phi or [None] * len(self.params), strict=True
            ):
                p.copy_(p0 if d is None else p0 + d)

    def signals(self, data: BlockData) -> dict:
        """Per-module token inputs and output gradients at the current parameters.

        Returns `{"tok": example index per real token, "lin": [(a, delta)], "gain": [G]}` with
        `G` the per-example gain gradients (n, width), and `f` the outputs (n,).
        """
        caps: dict = {}
        handles = []

        def fwd(name, kind):
            def hook(mod, inp, out):
                x = inp[0].detach()
                caps.setdefault(name, {"a": [], "d": []})["a"].append(x)
                out.register_hook(lambda g: caps[name]["d"].append(g.detach()))

            return hook

        for name, mod in self.linears + self.norms:
            handles.append(mod.register_forward_hook(fwd(name, "x")))
        fs, toks, start = [], [], 0
        was = [p.requires_grad for p in self.params]
        try:
            for p in self.params:
                p.requires_grad_(True)
            for (h, kw), m in zip(data.batches, data.masks, strict=True):
                f = self._out(h, kw, m)
                f.sum().backward()
                fs.append(f.detach())
                idx = torch.arange(start, start + m.shape[0], device=m.device)
                toks.append((idx[:, None].expand_as(m), m.bool()))
                start += m.shape[0]
        finally:
            for hd in handles:
                hd.remove()
            for p, w in zip(self.params, was, strict=True):
                p.requires_grad_(w)
                p.grad = None
        keep = [mk for _, mk in toks]
        tok = torch.cat([ix[mk] for ix, mk in toks])
        out = {"tok": tok, "f": torch.cat(fs), "lin": [], "gain": []}
        for name, _ in self.linears:
            # gradients arrive in reverse order of the forward hooks within one backward
            a = torch.cat([x[k] for x, k in zip(caps[name]["a"], keep, strict=True)])
            d = torch.cat([g[k] for g, k in zip(caps[name]["d"], keep, strict=True)])
            out["lin"].append((a.float(), d.float()))
        n = start
        for name, mod in self.norms:
            x = torch.cat([x[k] for x, k in zip(caps[name]["a"], keep, strict=True)]).float()
            d = torch.cat([g[k] for g, k in zip(caps[name]["d"], keep, strict=True)]).float()
            xh = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + mod.variance_epsilon)
            g = torch.zeros((n, x.shape[-1]), dtype=torch.float64, device=x.device)
            out["gain"].append(g.index_add_(0, tok, (xh * d).double()))
        return out


def kernel(s1: dict, s2: dict, chunk: int = 4096) -> torch.Tensor:
    """Empirical NTK between the examples of two `Readout.signals` results (float64)."""
    n1, n2 = int(s1["tok"].max()) + 1, int(s2["tok"].max()) + 1
    out = torch.zeros((n1, n2), dtype=torch.float64)
    for (a1, d1), (a2, d2) in zip(s1["lin"], s2["lin"], strict=True):
        for i in range(0, a1.shape[0], chunk):
            m = (a1[i : i + chunk] @ a2.T) * (d1[i : i + chunk] @ d2.T)  # (tokens, tokens)
            rows = torch.zeros((n1, a2.shape[0]), dtype=torch.float64)
            rows.index_add_(0, s1["tok"][i : i + chunk], m.double())
            out += torch.zeros((n1, n2), dtype=torch.float64).index_add_(1, s2["tok"], rows)
    for g1, g2 in zip(s1["gain"], s2["gain"], strict=True):
        out += g1 @ g2.T
    return out


def jvp(s: dict, phi: list[torch.Tensor]) -> torch.Tensor:
    """J phi: the directional derivative of every example's output along `phi` (float64)."""
    n = int(s["tok"].max()) + 1
    out = torch.zeros(n, dtype=torch.float64)
    k = len(s["lin"])
    for (a, d), p in zip(s["lin"], phi[:k], strict=True):
        out.index_add_(0, s["tok"], ((a @ p.T.float()) * d).sum(1).double())
    for g, p in zip(s["gain"], phi[k:], strict=True):
        out += g @ p.double()
    return out


def vjp(s: dict, c: torch.Tensor) -> list[torch.Tensor]:
    """J^T c as parameter-shaped tensors (float32)."""
    ct = c.double()[s["tok"]].float()
    out = [(d * ct[:, None]).T @ a for a, d in s["lin"]]
    out += [(g.T @ c.double()).float() for g in s["gain"]]
    return out


def _sq(phi) -> float:
    return float(sum(float((p.double() ** 2).sum()) for p in phi))


def fit(
    ro: Readout,
    data: BlockData,
    target: torch.Tensor,
    lam: float,
    f0: torch.Tensor,
    *,
    max_iter: int = 8,
    tol: float = 1e-4,
) -> tuple[list[torch.Tensor], dict]:
    """Damped Gauss-Newton for the ridge fit of the centred block output to `target`.

    Returns the offsets `phi` and a record: iterations, objective, relative stationarity
    $\\|J^\\top(g-t)+\\lambda\\varphi\\|/\\|J^\\top t\\|$ at the end.
    """
    t = target.double()
    phi = [torch.zeros_like(p) for p in ro.theta0]
    ro.set(phi)

    def objective(ph):
        ro.set(ph)
        g = ro.outputs(data).double() - f0
        return 0.5 * float(((g - t) ** 2).sum()) + 0.5 * lam * _sq(ph)

    obj = objective(phi)
    hist = [obj]
    it = 0
    scale = None
    for _ in range(max_iter):
        it += 1
        ro.set(phi)
        s = ro.signals(data)
        g = s["f"].double() - f0
        if scale is None:
            scale = float(torch.linalg.norm(torch.cat([v.reshape(-1) for v in vjp(s, t)])))
        k = kernel(s, s)
        rhs = t - g + jvp(s, phi)
        c = torch.linalg.solve(k + lam * torch.eye(k.shape[0], dtype=k.dtype), rhs)
        new = vjp(s, c)
        step, accepted = 1.0, False
        for _ in range(12):
            cand = [p + step * (q - p) for p, q in zip(phi, new, strict=True)]
            val = objective(cand)
            if val <= obj:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            break
        rel = abs(obj - val) / max(obj, 1e-300)
        phi, obj = cand, val
        hist.append(obj)
        if rel < tol:
            break
    ro.set(phi)
    s = ro.signals(data)
    grad = vjp(s, s["f"].double() - f0 - t)
    stat = torch.cat([(gg + lam * p).reshape(-1) for gg, p in zip(grad, phi, strict=True)])
    rec = dict(iterations=it, objective=hist, stationarity=float(torch.linalg.norm(stat)) / scale)
    return phi, rec

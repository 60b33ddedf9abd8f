"""A live intervention playground for Jupyter (needs a kernel; the built book has static explorers instead).

    from circuitnb.viz import widgets
    from circuitnb.modeling.train import load_or_train
    cfg = circuitnb.load("quick")
    pg = widgets.Playground(cfg, {name: load_or_train(cfg, name) for name in ("synthetic", "celeba")})
    pg                        # controls: model, image, t, site/head, intervention, strength
    pg.result["impact"]       # what the panel shows, also as data

Each change of a control reruns the model on one image (two forward passes):
the intact and the intervened pass share the noise draw, drawn exactly as
:func:`circuitnb.interventions.impact` draws it (the tests check they agree),
and ``mean`` ablations use the site means over ``reference_size`` images of the
same dataset at the same t. The kinds on offer, their strength ranges and
whether they take a head are read from the intervention registry
(:mod:`circuitnb.interventions.registry`): a newly registered kind shows up here.
"""
from __future__ import annotations

import io

import ipywidgets as W
import numpy as np
import torch
from PIL import Image

from circuitnb import data
from circuitnb.hooking.sites import groups, site_names
from circuitnb.interventions import registry
from circuitnb.interventions.impact import apply, paired_inputs, predicted_x0, reference_activations
from circuitnb.interventions.registry import Intervention
from circuitnb.measures.metrics import impact_score
from circuitnb.viz.plotting import to_uint8

_STRENGTH = "strength"                # the one numeric Intervention field the playground has a slider for


def playground_kinds() -> tuple[str, ...]:
    """Registered kinds the playground offers: all but those that need activations from another input."""
    return tuple(k for k in registry.kinds() if registry.get(k).needs != "source")


def _takes_head(kind: str) -> bool:
    return registry.get(kind).target in ("attention", "heads")


def png(x, scale: int = 4) -> bytes:
    """[3, H, W] in [-1, 1] -> PNG bytes, enlarged ``scale`` times (nearest neighbour)."""
    a = to_uint8(x)
    img = Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class Playground:
    """Controls and views for one intervention on one image of one model, rerun on every change."""

    def __init__(self, cfg, models: dict, images: dict | None = None, reference_size: int = 16,
                 seed: int | None = None):
        self.cfg, self.models = cfg, models
        self.images = images or {name: data.images(cfg, name, split="analysis") for name in models}
        self.reference_size = reference_size
        self.seed = cfg.run.seed if seed is None else seed
        unet = next(iter(models.values())).unet
        self._attention_layers = site_names(unet, "attn")
        sites = list(groups(unet)) + site_names(unet, "block") + self._attention_layers
        n = min(len(v) for v in self.images.values())
        style = dict(description_width="initial")
        self.model = W.Dropdown(options=list(models), description="model", style=style)
        self.image = W.IntSlider(0, 0, n - 1, description="image", style=style, continuous_update=False)
        self.t = W.IntSlider(300, 0, cfg.model.num_train_timesteps - 1, description="t", style=style,
                             continuous_update=False)
        self.kind = W.Dropdown(options=playground_kinds(), value="zero", description="intervention", style=style)
        self.site = W.Dropdown(options=sites, value=sites[0], description="site / group", style=style)
        self.head = W.Dropdown(options=[("all", -1)] + [(str(h), h) for h in range(cfg.model.n_heads)], value=-1,
                               description="head", style=style)
        self.strength = W.FloatSlider(0.5, min=0.0, max=4.0, step=0.01, description="strength", style=style,
                                      continuous_update=False)
        self._quiet = False                       # True while the strength range follows a new kind
        self.views = {k: W.Image(format="png", layout=W.Layout(width="128px")) for k in ("x_t", "eps_hat", "x0_hat")}
        self.status = W.HTML()
        self.result: dict | None = None           # mse_base, mse_int, impact (Eq. 5), intervention
        self.x0_hat: np.ndarray | None = None
        self.eps_hat: np.ndarray | None = None
        self.about = W.HTML()                     # the kind's one-line description, from the registry
        for c in (self.model, self.image, self.t, self.kind, self.site, self.head, self.strength):
            c.observe(self._changed, names="value")
        self._follow_kind()
        self.update()

    # --- what the controls mean --------------------------------------------------------------
    def intervention(self) -> Intervention:
        kind, site = self.kind.value, self.site.value
        spec = registry.get(kind)
        # Fit the chosen site to what the kind attaches to (its registered target).
        if spec.target in ("attention", "heads") and site not in self._attention_layers:
            site = self._attention_layers[0]
        if spec.target == "skips" and not (site.startswith("up") and "." not in site):
            site = "up0"
        site = spec.site or site                  # a kind with a fixed site (cut_mid) says so in the status
        strength = self.strength.value if _STRENGTH in spec.params else None
        head = self.head.value if _takes_head(kind) and self.head.value >= 0 else None
        return Intervention(kind, site, strength=strength, head=head, seed=self.seed)

    def _follow_kind(self) -> None:
        """Strength slider range and description from the registry; the value is kept where it fits."""
        spec = registry.get(self.kind.value)
        param = spec.params.get(_STRENGTH)
        self._quiet = True
        try:
            if param is not None:
                value = min(max(self.strength.value, param.lo), param.hi)
                # Widen first so that min <= max holds at every step, then narrow to the range.
                self.strength.min = min(self.strength.min, param.lo)
                self.strength.max = max(self.strength.max, param.hi)
                self.strength.value = value
                self.strength.min, self.strength.max = param.lo, param.hi
            self.strength.disabled = param is None
            self.head.disabled = not _takes_head(self.kind.value)
        finally:
            self._quiet = False
        self.about.value = f"<i>{spec.name}</i> ({spec.family}): {spec.doc}"

    def _changed(self, change) -> None:
        if self._quiet:
            return
        if change["owner"] is self.kind:
            self._follow_kind()
        self.update()

    @torch.no_grad()
    def update(self) -> None:
        """Rerun the model for the current controls and refresh every view."""
        m = self.models[self.model.value]
        images = self.images[self.model.value]
        i, t = self.image.value, self.t.value
        iv = self.intervention()
        # The draws of interventions.impact: eps first, then the mean-ablation reference's noise.
        x0, eps, tt, x_t, g = paired_inputs(m.unet, m.scheduler, images[i:i + 1], t, self.seed)
        try:
            reference = reference_activations(m.unet, m.scheduler, [[iv]], x0, t, g, images[: self.reference_size])
            eps_hat = apply(m.unet, [iv], x_t, tt, reference)
        except (ValueError, KeyError) as err:              # e.g. an intervention that does not fit the site
            self.status.value = f"<b>cannot apply</b> {iv.kind} to {iv.site}: {err}"
            return
        base = m.unet(x_t, tt).sample
        mse_base, mse_int = (base - eps).pow(2).mean().item(), (eps_hat - eps).pow(2).mean().item()
        self.result = dict(mse_base=mse_base, mse_int=mse_int, impact=impact_score(mse_int, mse_base),
                           intervention=iv)
        x0_hat = predicted_x0(m.scheduler, x_t, eps_hat, t)
        self.eps_hat, self.x0_hat = eps_hat[0].cpu().numpy(), x0_hat[0].cpu().numpy()
        self.views["x_t"].value = png(x_t[0].cpu().numpy().clip(-1, 1))
        self.views["eps_hat"].value = png(self.eps_hat / 3)            # eps ~ N(0, 1): +-3 sd fills the range
        self.views["x0_hat"].value = png(self.x0_hat)
        self.status.value = (f"{self.model.value} model, image {i}, t = {t}, {iv.kind} on {iv.site}"
                             f"{'' if iv.head is None else f' head {iv.head}'}"
                             f"{'' if iv.strength is None else f' (strength {iv.strength:g})'}: "
                             f"MSE {mse_base:.4f} → {mse_int:.4f}, <b>impact {self.result['impact']:+.4f}</b>")

    # --- display -----------------------------------------------------------------------------------
    @property
    def widget(self) -> W.Widget:
        labelled = [W.VBox([W.Label(k), v]) for k, v in self.views.items()]
        controls = W.VBox([self.model, self.image, self.t, self.kind, self.site, self.head, self.strength])
        return W.VBox([W.HBox([controls, *labelled]), self.about, self.status])

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)

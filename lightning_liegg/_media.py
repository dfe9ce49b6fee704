"""The callback's figures: their data, their time budget, and drawing them off the training path.

:class:`FigurePayload` defines every datum a figure needs (one place for the keys);
:class:`Figures` owns the budget, the renderer and the payload builder, so the callback only
offers each evaluation and logs what comes back.

A set of figures is drawn as arrays (:mod:`lightning_liegg._fast_figures`, the one drawing of
each figure, which :mod:`lightning_liegg.plotting` shows in notebooks) in a few hundredths of
a second. :class:`MediaRenderer` can also render in one background *process*
(threads would fight the training loop for the GIL) and hands the finished images back when
they are ready;
the callback logs them at the step they belong to. Where a process cannot be started (inside a
daemon process, or when the pool breaks) it renders in the calling process instead.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from .exceptions import LieGGWarning
from .functional.actions import Action, ChannelAction, ImageAction, SignalAction, VolumeAction
from .functional.report import SymmetryReport
from .history import Evaluation

__all__ = [
    "FigurePayload",
    "Figures",
    "MediaRenderer",
    "draw_figures",
    "filmstrip_frames",
    "figure_titles",
    "filmstrip_kind",
    "render_media",
]

#: Group parameters t of the filmstrip's columns, exp(t h).
FILMSTRIP_TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)

#: Sample layout -> filmstrip kind for actions that act on channels only (any trailing axes).
_CHANNEL_KINDS = {3: "signal", 4: "image", 5: "volume"}


def filmstrip_kind(action: Action, samples: Tensor | None) -> str | None:
    """How samples of ``action`` are drawn moved along a generator, or None (no filmstrip).

    ``"signal"`` (line plots), ``"image"`` (a grid of images) or ``"volume"`` (three orthogonal
    mid-slices). Signals, images and volumes by their action; a :class:`ChannelAction` (colour)
    by the layout of the samples ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``;
    vectors and other actions have no filmstrip.
    """
    if samples is None:
        return None
    if isinstance(action, SignalAction):
        return "signal"
    if isinstance(action, VolumeAction):
        return "volume"
    if isinstance(action, ImageAction):
        return "image"
    if isinstance(action, ChannelAction):
        return _CHANNEL_KINDS.get(samples.ndim)
    return None


def filmstrip_frames(
    action: Action, samples: Tensor | None, generator: Tensor, n: int
) -> tuple[Tensor, Tensor] | None:
    """The first ``n`` samples moved along ``generator``: ``(T, n, ...)`` and the times ``(T,)``.

    In the samples' dtype (the model may be fed them); None where :func:`filmstrip_kind` is.
    """
    if filmstrip_kind(action, samples) is None:
        return None
    assert samples is not None
    x = samples[:n]
    if not x.is_floating_point():
        x = x.float()
    t = torch.tensor(FILMSTRIP_TIMES, dtype=torch.float64)
    return action.transform(x, generator.to(x.dtype), t), t


@dataclass(frozen=True)
class FigurePayload:
    """Plain numpy data for the figures of one evaluation (cheap to send to a process).

    Attributes:
        generators: the most symmetric generators ``(k, p, q)``.
        variances: their variances ``(k,)``.
        biases: every generator's symmetry bias ``(m,)``, or None without a reference.
        relative_spectrum: ``(m,)``.
        reference_dim: the reference algebra's dimension, or None.
        symmetry_dim: the estimated symmetry dimension.
        steps: the steps of every evaluation so far ``(S,)``.
        spectra: their relative spectra ``(S, m)``.
        frames: samples moved along the first generator ``(T, n, ...)`` (images, signals,
            volumes; see :func:`filmstrip_kind`), or None.
        times: the group parameters of ``frames`` ``(T,)``.
        layer_names: with ``layers=``, the analysed layers in forward order (``"output"``
            last), else None.
        layer_variances: each layer's relative variance of its most symmetric generator at
            every evaluation ``(L, S)`` (NaN where a record has no such layer).
        layer_reference: the same for the reference algebra (mean relative variance along
            its basis) ``(L, S)``, or None without a reference.
        layer_generators: each layer's most symmetric generators at the last evaluation
            ``(L, k, p, q)``.
        layer_generator_variances: their relative variances ``(L, k)``.
        frames_kind: ``"image"``, ``"signal"`` or ``"volume"``: how ``frames`` are drawn.
        equivariance: whether the analysis had an output action (the titles say so).
        outputs: for grid outputs of the inputs' kind (images, signals, volumes), the model's
            outputs on ``frames`` ``(T, n, ...)`` (drawn beside the inputs), or None.
    """

    generators: np.ndarray
    variances: np.ndarray
    biases: np.ndarray | None
    relative_spectrum: np.ndarray
    reference_dim: int | None
    symmetry_dim: int
    steps: np.ndarray
    spectra: np.ndarray
    frames: np.ndarray | None = None
    times: np.ndarray | None = None
    layer_names: tuple[str, ...] | None = None
    layer_variances: np.ndarray | None = None
    layer_reference: np.ndarray | None = None
    layer_generators: np.ndarray | None = None
    layer_generator_variances: np.ndarray | None = None
    frames_kind: str = "image"
    equivariance: bool = False
    outputs: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        report: SymmetryReport,
        history: Sequence[Evaluation],
        action: Action,
        samples: Tensor | None,
        num_generators: int,
        filmstrip_samples: int,
        equivariance: bool = False,
        outputs: Tensor | None = None,
        moved: tuple[Tensor, Tensor] | None = None,
    ) -> FigurePayload:
        """The payload of ``report``, with the spectra of ``history`` for the evolution.

        ``equivariance``: an output action was set. ``outputs``: the model's outputs on the
        filmstrip's frames ``(T, n, ...)`` (image, signal or volume outputs), drawn beside
        the inputs. ``moved``: those frames and times from :func:`filmstrip_frames`, when the
        caller made them already (not warped again).
        """
        k = num_generators
        bias = report.symmetry_bias
        reference = report.reference
        frames = times = None
        if moved is None:
            moved = filmstrip_frames(action, samples, report.generators[0], filmstrip_samples)
        if moved is not None:
            drawn = moved[0]
            if getattr(action, "channels_last", False):  # the figures draw (T, N, C, H, W)
                drawn = drawn.movedim(-1, -3)
            frames, times = drawn.float().numpy(), moved[1].numpy()
        return cls(
            generators=report.generators[:k].numpy(),
            variances=report.spectrum[:k].numpy(),
            biases=None if bias is None else bias.numpy(),
            relative_spectrum=report.relative_spectrum.numpy(),
            reference_dim=None if reference is None else int(reference.shape[0]),
            symmetry_dim=report.symmetry_dim,
            steps=np.array([r.step for r in history]),
            spectra=np.array([r.relative_spectrum for r in history]),
            frames=frames,
            times=times,
            frames_kind=filmstrip_kind(action, samples) or "image",
            equivariance=equivariance,
            outputs=None if outputs is None or frames is None else outputs.float().numpy(),
            **_layer_fields(history, k),
        )


def _layer_fields(history: Sequence[Evaluation], k: int) -> dict[str, Any]:
    """The payload's ``layer_*`` fields from the records' per-layer data (empty without)."""
    last = history[-1].layers if history else None
    if not last:
        return {}
    names = tuple(last)

    def grid(key: str) -> np.ndarray:
        return np.array(
            [
                [(r.layers or {}).get(n, {}).get("scalars", {}).get(key, np.nan) for r in history]
                for n in names
            ],
            dtype=np.float64,
        )

    reference = "reference_variance" in last[names[0]]["scalars"]
    return {
        "layer_names": names,
        "layer_variances": grid("relative_variance"),
        "layer_reference": grid("reference_variance") if reference else None,
        "layer_generators": np.array([last[n]["generators"][:k] for n in names]),
        "layer_generator_variances": np.array(
            [last[n]["relative_spectrum"][:k] for n in names], dtype=np.float64
        ),
    }


def figure_titles(payload: FigurePayload) -> dict[str, str]:
    """The title of each figure of ``payload``, saying what was analysed.

    "invariance", or "equivariance" when the analysis had an output action. Only the
    figures the payload has (the bias with a reference, the filmstrip with frames, the layer
    figures with ``layers=``).
    """
    what = "equivariance" if payload.equivariance else "invariance"
    titles = {
        "generators": f"most symmetric generators ({what})",
        "spectrum": f"{what} spectrum",
        "evolution": f"{what} spectrum over training",
    }
    if payload.biases is not None:
        titles["bias"] = f"symmetry bias ({what})"
    if payload.frames is not None:
        moved = "inputs and outputs" if payload.outputs is not None else "samples"
        titles["filmstrip"] = f"{moved} along exp(t h0) ({what})"
    if payload.layer_names is not None:
        titles["layer_heatmap"] = f"{what}: log10 relative variance per layer"
        titles["layer_generators"] = f"most symmetric generators per layer ({what})"
    return titles


def _matplotlib_filmstrip(payload: FigurePayload, title: str) -> Figure | None:
    """The filmstrips only matplotlib draws: signals (line plots) and inputs beside outputs.

    None for the other filmstrips (images, volumes), which are drawn as images.
    """
    from . import plotting

    frames, times, outputs = payload.frames, payload.times, payload.outputs
    if frames is None or (outputs is None and payload.frames_kind != "signal"):
        return None
    if outputs is None:
        fig = plotting.plot_signal_filmstrip(frames, times)
    elif payload.frames_kind == "signal":
        fig = plotting.plot_signal_output_filmstrip(frames, outputs, times)
    else:
        if payload.frames_kind == "volume":
            frames = plotting.volume_mid_slices(frames)
            outputs = plotting.volume_mid_slices(outputs)
        fig = plotting.plot_output_filmstrip(frames, outputs, times)
    fig.suptitle(title, fontsize=9)
    return fig


def render_media(
    payload: FigurePayload, names: Collection[str] | None = None
) -> dict[str, np.ndarray]:
    """Render the callback's figures to ``(H, W, 3)`` uint8 arrays.

    One drawing path per figure: the generators, spectrum, bias, evolution, image and volume
    filmstrips and the layer figures are drawn as images by
    :mod:`lightning_liegg._fast_figures` (what :mod:`lightning_liegg.plotting` shows too);
    the filmstrips of signals and of outputs with matplotlib axes.

    Args:
        payload: the evaluation's data.
        names: render only these figures (default: all the payload has).

    Returns:
        ``{"generators", "spectrum", "evolution"[, "bias"][, "filmstrip"][, "layer_heatmap",
        "layer_generators"]}`` -> image, titled by :func:`figure_titles`.
    """
    from . import _fast_figures as fast
    from . import plotting

    titles = {
        name: title
        for name, title in figure_titles(payload).items()
        if names is None or name in names
    }
    k = payload.generators.shape[0]
    bias = payload.biases
    images: dict[str, np.ndarray] = {}
    if "generators" in titles:
        images["generators"] = fast.generators_image(
            payload.generators,
            variances=payload.variances,
            biases=None if bias is None else bias[:k],
            max_generators=k,
            title=titles["generators"],
        )
    if "spectrum" in titles:
        spectrum = fast.spectrum_image(
            payload.relative_spectrum,
            reference_dim=payload.reference_dim,
            symmetry_dim=payload.symmetry_dim,
        )
        images["spectrum"] = fast.titled(spectrum, titles["spectrum"])
    if "evolution" in titles:
        evolution = fast.evolution_image(payload.steps, payload.spectra)
        images["evolution"] = fast.titled(evolution, titles["evolution"])
    if "bias" in titles:
        images["bias"] = fast.titled(fast.bias_image(bias), titles["bias"])
    if "filmstrip" in titles:
        figure = _matplotlib_filmstrip(payload, titles["filmstrip"])
        if figure is not None:
            images["filmstrip"] = plotting.figure_to_array(figure, close=True)
        else:
            frames = payload.frames
            if payload.frames_kind == "volume":
                frames = plotting.volume_mid_slices(frames)
            what = "equivariance" if payload.equivariance else "invariance"
            title = fast.filmstrip_title(payload.generators[0], 0, what)
            images["filmstrip"] = fast.filmstrip_image(frames, payload.times, title)
    if "layer_heatmap" in titles:
        images["layer_heatmap"] = fast.layer_heatmap_image(
            payload.layer_names,
            payload.steps,
            payload.layer_variances,
            payload.layer_reference,
            title=titles["layer_heatmap"],
        )
    if "layer_generators" in titles:
        images["layer_generators"] = fast.layer_generators_image(
            payload.layer_names,
            payload.layer_generators,
            payload.layer_generator_variances,
            max_generators=k,
            title=titles["layer_generators"],
        )
    return images


def draw_figures(payload: FigurePayload, names: Collection[str] | None = None) -> dict[str, Figure]:
    """The callback's figures as matplotlib figures (for a notebook or ``savefig``).

    The same drawing as :func:`render_media`: each image figure shown at its own size (see
    :mod:`lightning_liegg.plotting`), the matplotlib filmstrips as they are drawn.
    ``names``: draw only these figures (default: all).

    Returns:
        The keys of :func:`render_media` -> figure.
    """
    from .plotting import _image_figure

    titles = figure_titles(payload)
    figures: dict[str, Figure] = {}
    if "filmstrip" in titles and (names is None or "filmstrip" in names):
        figure = _matplotlib_filmstrip(payload, titles["filmstrip"])
        if figure is not None:
            figures["filmstrip"] = figure
    rest = [n for n in titles if (names is None or n in names) and n not in figures]
    for name, image in render_media(payload, rest).items():
        figures[name] = _image_figure(image)
    return {name: figures[name] for name in titles if name in figures}


def _timed_render(payload: FigurePayload) -> tuple[dict[str, np.ndarray], float]:
    start = time.perf_counter()
    images = render_media(payload)
    return images, time.perf_counter() - start


def _warm_up() -> None:
    """Import what rendering needs, so the first real render does not pay for it."""
    from . import _fast_figures

    _fast_figures.bias_image(np.zeros(1))
    _fast_figures.spectrum_image(np.ones(2), 1, 1)
    _fast_figures.generators_image(np.zeros((1, 2, 2)), np.ones(1), np.ones(1))


class MediaRenderer:
    """Render payloads in a background process; collect the images in submission order.

    Args:
        background: use a worker process; ``False`` renders at once in this process.

    Attributes:
        seconds: time spent drawing so far (collected renders), whichever process drew.
        renders: number of collected renders.
    """

    def __init__(self, background: bool = False) -> None:
        self.background = background and not multiprocessing.current_process().daemon
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[tuple[int, Future | tuple[dict[str, np.ndarray], float]]] = []
        self._warm = False
        #: seconds spent drawing, in whichever process drew (the figures' whole CPU cost)
        self.seconds = 0.0
        self.renders = 0

    def start(self) -> None:
        """Start the worker process now, ready by the first evaluation.

        It imports torch and matplotlib, which takes seconds; training goes on meanwhile.
        In place, the first figures' one-time costs (fonts, figure objects) are paid here, so
        that the budget paces the figures by what each set costs.
        """
        if not self.background:
            if not self._warm:
                _warm_up()
                self._warm = True
            return
        if self._pool is not None:
            return
        try:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
            self._pool.submit(_warm_up)
        except Exception:  # noqa: BLE001 - submit() falls back to rendering in place
            self.close()

    def submit(self, step: int, payload: FigurePayload) -> None:
        """Queue the figures of the evaluation at ``step``."""
        if self.background:
            try:
                if self._pool is None:
                    context = multiprocessing.get_context("spawn")
                    self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
                self._pending.append((step, self._pool.submit(_timed_render, payload)))
                return
            except Exception as err:  # noqa: BLE001 - no process here: render in place
                warnings.warn(
                    f"LieGG renders its figures in the training process ({type(err).__name__}: "
                    f"{err}).",
                    LieGGWarning,
                    stacklevel=2,
                )
                self.close()
                self.background = False
        self._pending.append((step, _timed_render(payload)))

    def collect(
        self, wait: bool = False
    ) -> list[tuple[int, dict[str, np.ndarray] | BaseException]]:
        """The finished renders, oldest first; with ``wait`` every pending one.

        A render that failed comes back as its exception, so the caller can warn and go on.
        """
        done: list[tuple[int, dict[str, np.ndarray] | BaseException]] = []
        while self._pending:
            step, item = self._pending[0]
            if isinstance(item, Future):
                if not wait and not item.done():
                    break
                try:
                    images, seconds = item.result()
                    result: dict[str, np.ndarray] | BaseException = images
                except BaseException as err:  # noqa: BLE001 - handed back to the caller
                    result, seconds = err, 0.0
            else:
                (result, seconds) = item
            self.seconds += seconds
            self.renders += 1
            self._pending.pop(0)
            done.append((step, result))
        return done

    @property
    def pending(self) -> int:
        """How many evaluations wait for their figures."""
        return len(self._pending)

    def close(self) -> None:
        """Stop the worker process (after its current render)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None


class Figures:
    """The figure budget, the renderer and the payload builder, behind one object.

    An evaluation is :meth:`offer`-ed; its figures are drawn when one more set fits
    ``budget`` (a share of the time since :meth:`start`), else held back. Whatever the
    budget, a run draws its first evaluation, the first one past the middle of training (when
    :meth:`start` is told the number of steps) and the last one (held back sets are drawn at
    :meth:`finish`), so the images slider always moves. :meth:`collect` hands back the
    finished images (or a render's exception) with their steps.

    Args:
        budget: share of training time the figures may cost, in (0, 1], or None (no limit).
        background: draw in a worker process (see :class:`MediaRenderer`).
    """

    #: assumed cost of a set of figures before one was measured (seconds)
    FIRST_ESTIMATE = 0.1

    def __init__(self, budget: float | None = 0.05, background: bool = False) -> None:
        self.budget = budget
        self.background = background
        self.renderer: MediaRenderer | None = None
        self._fit_start: float | None = None
        self._deferred: tuple[int, Callable[[], FigurePayload]] | None = None
        self._total_steps: int | None = None
        self._drawn: list[int] = []
        self._closed_renders, self._closed_seconds = 0, 0.0

    def charge(self, seconds: float) -> None:
        """Count figure work done outside the renderer (building payloads, encoding images)."""
        self._ensure_renderer().seconds += seconds

    @property
    def renders(self) -> int:
        """Sets of figures drawn so far (also after :meth:`close`)."""
        live = self.renderer.renders if self.renderer is not None else 0
        return self._closed_renders + live

    @property
    def seconds(self) -> float:
        """Seconds spent drawing so far, in whichever process drew (also after close)."""
        live = self.renderer.seconds if self.renderer is not None else 0.0
        return self._closed_seconds + live

    def start(
        self, fit: bool = True, warm_up: bool = True, total_steps: float | None = None
    ) -> None:
        """Begin a run: with ``fit`` the budget clock starts; ``warm_up`` starts the worker.

        ``total_steps``: the run's length in steps (``trainer.estimated_stepping_batches``),
        so that an evaluation in the middle is drawn too; None or infinite: unknown.
        """
        self._fit_start = time.perf_counter() if fit else None
        self._deferred = None
        self._drawn = []
        finite = total_steps is not None and math.isfinite(total_steps) and total_steps > 0
        self._total_steps = int(total_steps) if finite else None  # type: ignore[arg-type]
        if warm_up:
            self._ensure_renderer().start()

    def within_budget(self) -> bool:
        """Whether one more set of figures fits the budget (the last set is drawn anyway)."""
        if self.budget is None or self._fit_start is None or self.renderer is None:
            return True
        renderer = self.renderer
        estimate = renderer.seconds / renderer.renders if renderer.renders else self.FIRST_ESTIMATE
        elapsed = time.perf_counter() - self._fit_start
        return renderer.seconds + estimate <= self.budget * elapsed

    def _landmark(self, step: int) -> bool:
        """The first evaluation of the run, or the first one past the middle of training."""
        if not self._drawn:
            return True
        total = self._total_steps
        return total is not None and 2 * step >= total and 2 * self._drawn[-1] < total

    def offer(self, step: int, build: Callable[[], FigurePayload]) -> bool:
        """Draw the figures of the evaluation at ``step`` if the budget allows.

        ``build`` makes the payload, only when it is drawn. Returns whether it was submitted.
        """
        renderer = self._ensure_renderer()
        if self._landmark(step) or self.within_budget():
            start = time.perf_counter()
            payload = build()
            self.charge(time.perf_counter() - start)
            renderer.submit(step, payload)
            self._drawn.append(step)
            self._deferred = None
            return True
        self._deferred = (step, build)
        return False

    def finish(self) -> None:
        """End of fit: draw the last evaluation's figures if the budget held them back."""
        if self._deferred is not None and self.renderer is not None:
            step, build = self._deferred
            self.renderer.submit(step, build())
            self._drawn.append(step)
        self._deferred = None
        self._fit_start = None

    @property
    def pending(self) -> int:
        """How many evaluations wait for their figures."""
        return 0 if self.renderer is None else self.renderer.pending

    def collect(
        self, wait: bool = False
    ) -> list[tuple[int, dict[str, np.ndarray] | BaseException]]:
        """The finished renders, oldest first (see :meth:`MediaRenderer.collect`)."""
        return [] if self.renderer is None else self.renderer.collect(wait=wait)

    def close(self) -> None:
        """Stop the worker process."""
        if self.renderer is not None:
            self.renderer.close()
            self._closed_renders += self.renderer.renders
            self._closed_seconds += self.renderer.seconds
            self.renderer = None

    def _ensure_renderer(self) -> MediaRenderer:
        if self.renderer is None:
            self.renderer = MediaRenderer(background=self.background)
        return self.renderer

    def __getstate__(self) -> dict:
        # ddp_spawn pickles callbacks into its workers: a process pool does not travel.
        state = dict(self.__dict__)
        state["renderer"] = None
        state["_deferred"] = None
        return state

"""The callback's figures: what goes into them, and rendering them off the training path.

Rendering a handful of matplotlib figures costs about a second, which on a small model is as
long as an epoch. :class:`MediaRenderer` renders in one background *process* (threads would
fight the training loop for the GIL) and hands the finished images back when they are ready;
the callback logs them at the step they belong to. Where a process cannot be started (inside a
daemon process, or when the pool breaks) it renders in the calling process instead.
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np

__all__ = ["MediaRenderer", "render_media"]


def render_media(payload: dict[str, Any]) -> dict[str, np.ndarray]:
    """Render the callback's figures to ``(H, W, 3)`` uint8 arrays.

    Args:
        payload: plain numpy data: ``generators`` (k, p, q), ``variances`` (k,), ``biases``
            (m,) or None, ``relative_spectrum`` (m,), ``reference_dim``, ``symmetry_dim``,
            ``steps`` (S,), ``spectra`` (S, m), and for images ``frames`` (T, n, C, H, W) with
            ``times`` (T,).

    Returns:
        ``{"generators", "spectrum", "evolution"[, "bias"][, "filmstrip"]}`` -> image.
    """
    from . import plotting

    k = payload["generators"].shape[0]
    bias = payload["biases"]
    figures = {
        "generators": plotting.plot_generators(
            payload["generators"],
            variances=payload["variances"],
            biases=None if bias is None else bias[:k],
            max_generators=k,
        ),
        "spectrum": plotting.plot_spectrum(
            payload["relative_spectrum"],
            reference_dim=payload["reference_dim"],
            symmetry_dim=payload["symmetry_dim"],
        ),
        "evolution": plotting.plot_evolution(payload["steps"], payload["spectra"]),
    }
    if bias is not None:
        figures["bias"] = plotting.plot_bias(bias)
    if payload.get("frames") is not None:
        figures["filmstrip"] = plotting.plot_filmstrip(payload["frames"], payload["times"])
    return {name: plotting.figure_to_array(fig, close=True) for name, fig in figures.items()}


def _timed_render(payload: dict[str, Any]) -> tuple[dict[str, np.ndarray], float]:
    start = time.perf_counter()
    images = render_media(payload)
    return images, time.perf_counter() - start


def _warm_up() -> None:
    """Import what rendering needs, so the first real render does not pay for it."""
    from . import plotting

    plotting.figure_to_array(plotting.plot_bias(np.zeros(1)), close=True)


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
        #: seconds spent drawing, in whichever process drew (the figures' whole CPU cost)
        self.seconds = 0.0
        self.renders = 0

    def start(self) -> None:
        """Start the worker process now, ready by the first evaluation.

        It imports torch and matplotlib, which takes seconds; training goes on meanwhile.
        """
        if not self.background or self._pool is not None:
            return
        try:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
            self._pool.submit(_warm_up)
        except Exception:  # noqa: BLE001 - submit() falls back to rendering in place
            self.close()

    def submit(self, step: int, payload: dict[str, Any]) -> None:
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
                    RuntimeWarning,
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

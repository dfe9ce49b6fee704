"""The replay command line (``python -m lightning_liegg.replay``), on jsonargparse.

Needs the ``[cli]`` extra. The callback's options come from its signature, except the
callables (``input_fn``, ``output_transform``, ``forward_fn``, the ``transforms``' values),
which are dotted paths (``my_project.data.first``), and ``reference``, an algebra name or
nested lists; so the help lists what to type instead of the classes a type hint could match.
A mistake in what the user typed (a missing checkpoint folder, a dotted path that does not
import) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._imports import JSONARGPARSE
from .callback import LieGGCallback
from .exceptions import LieGGError

__all__ = ["build_parser", "import_dotted", "replay_main"]

#: callback options given as dotted paths of callables
CALLABLES = {
    "input_fn": "maps a batch to the model input, or to (x, extra)",
    "output_transform": "applied to the model outputs first",
    "forward_fn": "(module, x[, extra]) -> outputs, for models with more inputs",
}


def import_dotted(path: str) -> Any:
    """The object at a dotted path ``package.module.Name`` (a LieGGError when it is not one)."""
    module, _, name = path.rpartition(".")
    if not module:
        raise LieGGError(f"Expected a dotted path 'package.module.Name', but got {path!r}.")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise LieGGError(
            f"Expected an importable dotted path, but got {path!r} ({type(err).__name__}: {err})."
        ) from err


def build_parser(description: str = "") -> Any:
    """The replay parser: :func:`~lightning_liegg.replay`'s arguments, callback options nested."""
    jsonargparse = JSONARGPARSE.require()
    from jsonargparse import ActionConfigFile

    parser = jsonargparse.ArgumentParser(
        prog="python -m lightning_liegg.replay", description=description
    )
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--model", type=str, required=True, help="LightningModule class path")
    parser.add_argument("--checkpoints", type=str, required=True, help="folder searched for *.ckpt")
    parser.add_argument(
        "--data",
        type=str | dict,
        required=True,
        help="datamodule class path, or {class_path: ..., init_args: {...}}",
    )
    parser.add_argument("--log_dir", type=str | None, default=None, help="TensorBoard folder")
    parser.add_argument("--device", type=str, default="cpu", help="where the model runs")
    parser.add_argument(
        "--weights_only",
        type=bool,
        default=True,
        help="read checkpoints with the safe loader; false only for files you trust",
    )
    skip = {*CALLABLES, "reference", "transforms"}
    parser.add_class_arguments(LieGGCallback, "callback", skip=skip, instantiate=False)
    for name, what in CALLABLES.items():
        parser.add_argument(
            f"--callback.{name}",
            type=str | None,
            default=None,
            help=f"dotted path of a callable: {what}",
        )
    parser.add_argument(
        "--callback.transforms",
        type=dict[str, str] | None,
        default=None,
        help="discrete transforms: name -> dotted path of a callable x -> g x",
    )
    parser.add_argument(
        "--callback.reference",
        type=str | list | None,
        default=None,
        help='reference algebra: a name ("so(3)", "rotation2d") or nested lists (k, p, q)',
    )
    return parser


def replay_main(
    argv: Sequence[str] | None, replay: Callable[..., Any], description: str = ""
) -> Any:
    """Parse ``argv``, build the callback, run ``replay``; user mistakes exit with status 2."""
    parser = build_parser(description)
    cfg = parser.parse_args(list(argv) if argv is not None else None)
    try:
        init = parser.instantiate(cfg)
        options = dict(init.callback.as_dict() if hasattr(init.callback, "as_dict") else {})
        options["action"] = init.callback.action
        if init.callback.get("output_action") is not None:
            options["output_action"] = init.callback.output_action
        for name in CALLABLES:
            path = options.get(name)
            options[name] = None if path is None else import_dotted(path)
        if options.get("transforms") is not None:
            options["transforms"] = {k: import_dotted(v) for k, v in options["transforms"].items()}
        callback = LieGGCallback(**options)
        data = cfg.data.as_dict() if hasattr(cfg.data, "as_dict") else cfg.data
        return replay(
            cfg.model,
            cfg.checkpoints,
            data,
            callback,
            log_dir=cfg.log_dir,
            device=cfg.device,
            weights_only=cfg.weights_only,
        )
    except LieGGError as err:
        message = " ".join(str(err).split())
        sys.stderr.write(f"{parser.prog}: error: {message}\n")
        raise SystemExit(2) from None

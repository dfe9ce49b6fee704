"""Take real screenshots of TensorBoard showing the ``liegg/`` curves and heatmaps.

Starts ``tensorboard --logdir DIR --host 127.0.0.1 --port P``, waits until it serves the
``liegg`` tags, loads its pages in headless Chromium and saves one PNG per page:

* ``scalars``: the Scalars dashboard filtered to ``liegg`` (every ``liegg/`` curve);
* ``images``: the Images dashboard filtered to ``liegg`` at actual image size (generator
  heatmaps, spectrum, bias, evolution, filmstrip);
* ``timeseries``: TensorBoard's landing page (Time Series) filtered to ``liegg``;
* ``customscalars``: the Custom Scalars dashboard (the callback's layout: one quantity per
  chart, with its legend).

``--default-image-size`` leaves "Show actual image size" unticked on the Images page, as a
new user sees it. On the Images and Time Series pages the log lists each image's own size and
the size it is shown at.

Scalars are shown unsmoothed (``--smoothing``, TensorBoard's default is 0.6) and with
"Ignore outliers in chart scaling" off (``--ignore-outliers``), since a short run's first
points would otherwise be clipped.

``--out docs/tensorboard.png`` writes ``docs/tensorboard_scalars.png``,
``docs/tensorboard_images.png``, ``docs/tensorboard_timeseries.png`` and
``docs/tensorboard_customscalars.png``. TensorBoard is stopped
on every exit, errors included.

Needs Chromium (Debian: ``apt-get install chromium``) and the Python package ``playwright``,
which drives that Chromium through ``executable_path``. This script installs nothing and
never runs ``sudo``; ``make screenshot`` installs what is missing, visibly, before running it.

Example::

    .venv/bin/python scripts/screenshot_tensorboard.py --logdir runs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PAGES = ("scalars", "images", "timeseries", "customscalars")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]

# Walks the DOM through open shadow roots (TensorBoard's legacy dashboards are Polymer).
_DEEP_JS = """
const deepAll = (selector) => {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.matches(selector)) found.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
};
const scroller = () => {
  let best = null;
  for (const el of deepAll('*')) {
    const style = getComputedStyle(el).overflowY;
    if ((style === 'auto' || style === 'scroll') && el.clientHeight > 200 &&
        el.scrollHeight > el.clientHeight + 4 &&
        (!best || el.clientWidth * el.clientHeight > best.clientWidth * best.clientHeight)) {
      best = el;
    }
  }
  return best;
};
"""

# Ready when the dashboard drew its cards and every image on the page has loaded.
_READY_JS = (
    "(selector) => {"
    + _DEEP_JS
    + """
  const cards = deepAll(selector).filter((el) => el.getBoundingClientRect().height > 0);
  if (cards.length === 0) return false;
  const images = deepAll('img').filter((img) => img.getBoundingClientRect().height > 0);
  if (!images.every((img) => img.complete && img.naturalWidth > 0)) return false;
  const busy = deepAll('paper-spinner, paper-spinner-lite, mat-spinner, mat-progress-bar')
    .filter((el) => el.getBoundingClientRect().height > 0 && (el.active !== false));
  return busy.length === 0;
}"""
)

# Extra viewport height needed to show the whole scrolling content area without scrolling.
_OVERFLOW_JS = (
    "() => {"
    + _DEEP_JS
    + """
  const el = scroller();
  return el ? el.scrollHeight - el.clientHeight : 0;
}"""
)

# Bottom edge (page pixels) of the first element matching the selector, or of the content.
_BOTTOM_JS = (
    "(selector) => {"
    + _DEEP_JS
    + """
  const shown = (el) => el.getBoundingClientRect().height > 0;
  const first = selector ? deepAll(selector).filter(shown)[0] : null;
  if (first) return first.getBoundingClientRect().bottom;
  const el = scroller();
  let bottom = 0;
  for (const child of deepAll('*')) {
    if (el && el.contains(child) && shown(child)) {
      bottom = Math.max(bottom, child.getBoundingClientRect().bottom);
    }
  }
  return bottom || document.documentElement.scrollHeight;
}"""
)


# Natural and shown size (CSS px) of every image drawn on the page, in page order.
_IMAGE_SIZES_JS = (
    "() => {"
    + _DEEP_JS
    + """
  return deepAll('img')
    .filter((img) => img.getBoundingClientRect().height > 0)
    .map((img) => {
      const box = img.getBoundingClientRect();
      return [img.naturalWidth, img.naturalHeight, Math.round(box.width),
              Math.round(box.height)];
    });
}"""
)


class ScreenshotError(RuntimeError):
    """A step failed; the message says which and what to do."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--logdir", required=True, type=Path, help="TensorBoard log directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/tensorboard.png"),
        help="output stem: writes <stem>_<page>.png beside it for every page",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument(
        "--pages",
        default=",".join(PAGES),
        help=f"comma-separated pages to shoot, from {', '.join(PAGES)}",
    )
    parser.add_argument("--tag-filter", default="liegg", help="tag regex typed into the filter")
    parser.add_argument(
        "--smoothing", type=float, default=0.0, help="scalar smoothing weight shown, in [0, 1)"
    )
    parser.add_argument(
        "--ignore-outliers",
        action="store_true",
        help="keep TensorBoard's 'Ignore outliers in chart scaling' (clips early points)",
    )
    parser.add_argument(
        "--default-image-size",
        action="store_true",
        help="leave 'Show actual image size' unticked on the Images page (TensorBoard's default)",
    )
    parser.add_argument("--width", type=int, default=1600, help="browser window width (px)")
    parser.add_argument("--height", type=int, default=1000, help="minimum window height (px)")
    parser.add_argument(
        "--max-height", type=int, default=6000, help="the window grows to fit the page up to this"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="device scale factor")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: PATH)")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for TensorBoard to serve the tags",
    )
    parser.add_argument(
        "--page-timeout", type=float, default=60.0, help="seconds to wait for each page to draw"
    )
    args = parser.parse_args(argv)
    args.pages = [page.strip() for page in args.pages.split(",") if page.strip()]
    unknown = sorted(set(args.pages) - set(PAGES))
    if unknown or not args.pages:
        parser.error(f"--pages expects names from {PAGES}, got {args.pages}")
    if not 0.0 <= args.smoothing < 1.0:
        parser.error(f"--smoothing expects a value in [0, 1), got {args.smoothing}")
    if not args.logdir.is_dir():
        parser.error(f"--logdir {args.logdir} is not a directory")
    return args


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"[screenshot_tensorboard] {message}", file=sys.stderr, flush=True)


def find_chromium(explicit: str | None) -> str | None:
    """Path of the Chromium executable, or None when there is none."""
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium(explicit: str | None) -> str:
    """The Chromium executable; this script installs nothing (``make screenshot`` does)."""
    path = find_chromium(explicit)
    if path:
        return path
    if explicit:
        raise ScreenshotError(f"--chromium {explicit} is not an executable")
    raise ScreenshotError(
        "Chromium not found on PATH: install it (Debian: apt-get install chromium; or run "
        "`make screenshot`, which does so visibly) or pass --chromium PATH"
    )


def require_playwright() -> None:
    """Fail clearly when the Python package playwright is missing (never installs it)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise ScreenshotError(
            f"the Python package playwright is missing: {sys.executable} -m pip install "
            "playwright (its browser download is not needed; `make screenshot` installs it)"
        ) from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> object:
    """GET a URL and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _matching_tags(base: str, plugin: str, pattern: re.Pattern[str]) -> set[tuple[str, str]]:
    """The (run, tag) pairs of a TensorBoard plugin whose tag matches the pattern."""
    try:
        listing = _get_json(f"{base}/data/plugin/{plugin}/tags")
    except (urllib.error.URLError, OSError, ValueError):
        return set()
    if not isinstance(listing, dict):
        return set()
    return {
        (run, tag)
        for run, tags in listing.items()
        if isinstance(tags, dict)
        for tag in tags
        if pattern.search(tag)
    }


@contextmanager
def tensorboard(logdir: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run TensorBoard on 127.0.0.1:port for the duration of the block; always stops it."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise ScreenshotError(
            f"tensorboard is not importable by {sys.executable}; run this script with the "
            "Python that has it (e.g. .venv/bin/python)"
        )
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(logdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log("starting: " + " ".join(command))
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_process_group(process)
        log("TensorBoard stopped")


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process started with ``start_new_session=True`` and its children."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_tensorboard(
    process: subprocess.Popen[bytes],
    base: str,
    plugins: list[str],
    tag_filter: str,
    timeout: float,
    log_path: Path,
) -> None:
    """Wait until TensorBoard answers and every plugin lists the same matching tags twice."""
    pattern = re.compile(tag_filter)
    deadline = time.monotonic() + timeout
    answered = False
    previous: dict[str, set[tuple[str, str]]] | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScreenshotError(
                f"TensorBoard exited with code {process.returncode}:\n{_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{base}/data/plugins_listing", timeout=5):
                answered = True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
            continue
        current = {plugin: _matching_tags(base, plugin, pattern) for plugin in plugins}
        if all(current.values()) and current == previous:
            counts = ", ".join(f"{len(tags)} {plugin}" for plugin, tags in current.items())
            log(f"TensorBoard is serving {counts} tags matching {tag_filter!r}")
            return
        previous = current
        time.sleep(1.0)
    if not answered:
        raise ScreenshotError(
            f"TensorBoard did not answer on {base} within {timeout:.0f}s:\n{_tail(log_path)}"
        )
    missing = [plugin for plugin, tags in (previous or {}).items() if not tags]
    raise ScreenshotError(
        f"TensorBoard answered on {base} but, after {timeout:.0f}s, lists no {missing} tags "
        f"matching {tag_filter!r}: does the logdir hold a LieGGCallback run?"
    )


def _tail(path: Path, lines: int = 20) -> str:
    """The last lines of a text file, indented."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text)


def page_urls(base: str, tag_filter: str, smoothing: float) -> dict[str, str]:
    """The URL of every page; the legacy dashboards keep their state in the hash."""
    from urllib.parse import quote

    tags = quote(tag_filter, safe="")
    # forceSVG: Time Series' WebGL line charts stay blank under --disable-gpu.
    query = f"?tagFilter={tags}&smoothing={smoothing:g}&forceSVG=true"
    return {
        "scalars": f"{base}/#scalars&tagFilter={tags}&_smoothingWeight={smoothing:g}",
        "images": f"{base}/#images&tagFilter={tags}",
        "timeseries": f"{base}/{query}#timeseries",
        "customscalars": f"{base}/#custom_scalars&_smoothingWeight={smoothing:g}",
    }


def output_path(out: Path, page: str) -> Path:
    """``docs/tensorboard.png`` -> ``docs/tensorboard_<page>.png``."""
    suffix = out.suffix or ".png"
    return out.with_name(f"{out.stem}_{page}{suffix}")


# Per page: the card selector that means "drawn", and the element whose bottom ends the shot.
_PAGE_PARTS = {
    "scalars": ("tf-scalar-card", "tf-category-paginated-view"),
    "images": ("tf-image-loader", "tf-category-paginated-view"),
    "timeseries": ("card-view", None),
    "customscalars": ("tf-custom-scalar-multi-line-chart-card", "tf-category-paginated-view"),
}


def shoot_playwright(
    chromium: str, urls: dict[str, str], outputs: dict[str, Path], args: argparse.Namespace
) -> None:
    """Load each page in Chromium through Playwright and save a screenshot of it."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    timeout_ms = args.page_timeout * 1000
    with tempfile.TemporaryDirectory(prefix="liegg-chromium-") as profile, sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": args.width, "height": args.height},
                device_scale_factor=args.scale,
            )
        except PlaywrightError as error:
            raise ScreenshotError(f"Chromium ({chromium}) did not start: {error}") from None
        try:
            for page_name, url in urls.items():
                page = context.new_page()
                page.set_default_timeout(timeout_ms)
                try:
                    _shoot_page(page, page_name, url, outputs[page_name], args)
                except PlaywrightError as error:
                    debug = outputs[page_name].with_suffix(".failed.png")
                    try:
                        page.screenshot(path=str(debug))
                        seen = f"; what it showed is in {debug}"
                    except PlaywrightError:
                        seen = ""
                    raise ScreenshotError(
                        f"the {page_name} page did not finish drawing ({error}){seen}"
                    ) from None
                finally:
                    page.close()
        finally:
            context.close()


def _shoot_page(page: Any, page_name: str, url: str, out: Path, args: argparse.Namespace) -> None:
    """Load one page, set it up, wait until it has drawn and save the screenshot."""
    card, section = _PAGE_PARTS[page_name]
    timeout_ms = args.page_timeout * 1000
    log(f"loading {url}")
    page.goto(url, wait_until="load")
    page.wait_for_function(_READY_JS, arg=card, timeout=timeout_ms, polling=500)
    if page_name in ("scalars", "timeseries", "customscalars"):
        _set_checkbox(page, "Ignore outliers in chart scaling", args.ignore_outliers)
    if page_name in ("images", "timeseries"):
        actual = page_name == "images" and not args.default_image_size
        _set_checkbox(page, "Show actual image size", actual)
    if page_name == "timeseries":
        _close_timeseries_settings(page)
    _grow_to_content(page, args)
    page.wait_for_function(_READY_JS, arg=card, timeout=timeout_ms, polling=500)
    page.wait_for_timeout(1500)  # chart transitions
    bottom = page.evaluate(_BOTTOM_JS, section)
    viewport = page.viewport_size or {"width": args.width, "height": args.height}
    height = min(viewport["height"], max(args.height // 2, int(bottom) + 8))
    page.screenshot(
        path=str(out), clip={"x": 0, "y": 0, "width": viewport["width"], "height": height}
    )
    log(f"wrote {out} ({viewport['width']}x{height} CSS px)")
    if page_name in ("images", "timeseries"):
        sizes = [f"{a}x{b} -> {c}x{d}" for a, b, c, d in page.evaluate(_IMAGE_SIZES_JS)]
        shown = ", ".join(dict.fromkeys(sizes))  # distinct, in page order
        log(f"images (natural -> shown, CSS px): {shown or 'none'}")


def _set_checkbox(page: Any, label: str, checked: bool) -> None:
    """Tick or untick a Polymer or Angular Material checkbox by its label, when present."""
    box = page.locator("paper-checkbox, mat-checkbox", has_text=label).first
    if not box.count() or not box.is_visible():
        log(f"no visible checkbox {label!r}; left as it is")
        return
    state = box.evaluate(
        "(el) => el.checked !== undefined ? !!el.checked"
        " : !!(el.querySelector('input') || {}).checked"
    )
    if state != checked:
        box.click()
        page.wait_for_timeout(500)


def _close_timeseries_settings(page: Any) -> None:
    """Hide the Time Series settings pane so the cards get the width."""
    close = page.locator("button[aria-label='Close side pane']")
    if close.count() and close.first.is_visible():
        close.first.click()
        page.wait_for_timeout(500)


def _grow_to_content(page: Any, args: argparse.Namespace) -> None:
    """Enlarge the window until the scrolling content area needs no scrolling."""
    for _ in range(4):
        extra = page.evaluate(_OVERFLOW_JS)
        viewport = page.viewport_size
        if extra <= 0 or viewport["height"] >= args.max_height:
            return
        height = min(args.max_height, viewport["height"] + int(extra) + 8)
        page.set_viewport_size({"width": viewport["width"], "height": height})
        page.wait_for_timeout(1000)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    # SIGTERM runs the cleanup too (TensorBoard is stopped in a finally block).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        chromium = require_chromium(args.chromium)
        log(f"using Chromium {chromium}")
        require_playwright()
        port = args.port or free_port()
        base = f"http://127.0.0.1:{port}"
        outputs = {page: output_path(args.out, page) for page in args.pages}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # The pages that draw each plugin's tags: TensorBoard must serve those first.
        drawn_by = {"scalars": {"scalars", "timeseries", "customscalars"}}
        drawn_by["images"] = {"images", "timeseries"}
        plugins = [plugin for plugin, pages in drawn_by.items() if pages & set(args.pages)]
        with tempfile.TemporaryDirectory(prefix="liegg-tensorboard-") as tmp:
            log_path = Path(tmp) / "tensorboard.log"
            with tensorboard(args.logdir, port, log_path) as process:
                wait_for_tensorboard(
                    process, base, plugins, args.tag_filter, args.startup_timeout, log_path
                )
                urls = {
                    page: url
                    for page, url in page_urls(base, args.tag_filter, args.smoothing).items()
                    if page in args.pages
                }
                shoot_playwright(chromium, urls, outputs, args)
    except ScreenshotError as error:
        print(f"screenshot_tensorboard: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("screenshot_tensorboard: interrupted", file=sys.stderr)
        return 130
    for path in outputs.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

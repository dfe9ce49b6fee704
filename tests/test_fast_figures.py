"""The callback's figures as arrays: layout for TensorBoard cards, pixels where they belong."""

import numpy as np
import pytest

from lightning_liegg import _fast_figures as fast


def _white_fraction(image: np.ndarray) -> float:
    return float((image == 255).all(axis=-1).mean())


@pytest.mark.parametrize("k", [1, 4, 6, 9])
@pytest.mark.parametrize("shape", [(2, 2), (2, 3), (5, 5)], ids=["gl2", "aff2", "gl5"])
def test_generators_image_is_a_grid_near_16_to_9(k, shape):
    gens = np.random.default_rng(0).normal(size=(k, *shape))
    image = fast.generators_image(gens, np.arange(k) * 1e-3, np.linspace(0, 1, k), k)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    height, width = image.shape[:2]
    # near 16:9, a TensorBoard card's shape (it scales an image to fit), not a tall grid
    assert 1.3 <= width / height <= 2.7, image.shape
    # a small generator is upscaled: readable in a card, not a thin strip
    assert height >= 100 and width >= 250
    if k == 4 and shape == (2, 2):  # the image action's four generators: one card's size
        assert width <= 480 and height <= 270


def test_generators_image_colours_each_entry_on_a_shared_scale():
    gens = np.zeros((2, 2, 2))
    gens[0, 0, 0], gens[1, 1, 1] = 1.0, -0.5  # vmax = 1 over both panels
    image = fast.generators_image(gens)
    lut = fast._lut("RdBu_r")
    full_red = (image == lut[255]).all(axis=-1)
    assert full_red.sum() >= 20 * 20  # the +1 entry: a block of at least 28 x 28 pixels
    half_blue = (image == fast.colorize(np.array(-0.5), -1.0, 1.0, "RdBu_r")).all(axis=-1)
    assert half_blue.sum() >= 20 * 20
    # the +1 block lies in the first panel (left of and above the -0.5 block)
    ry, rx = np.argwhere(full_red).mean(axis=0)
    by, bx = np.argwhere(half_blue).mean(axis=0)
    assert rx < bx


def test_filmstrip_image_places_each_frame_in_its_row_and_column():
    n_times, n_samples, h, w = 3, 2, 8, 8
    frames = np.zeros((n_times, n_samples, 1, h, w))
    for t in range(n_times):
        for i in range(n_samples):
            frames[t, i] = t * n_samples + i  # each frame one grey level
    image = fast.filmstrip_image(frames, np.linspace(0, 1, n_times), ["a title", "second line"])
    levels = fast.colorize(np.arange(n_times * n_samples, dtype=float), 0, 5, "gray")
    centres = {}
    for value, colour in enumerate(levels):
        if value in (0, n_times * n_samples - 1):  # black/white also appear in text/background
            continue
        hits = np.argwhere((image == colour).all(axis=-1))
        assert len(hits) >= (64 // 8 * h) ** 2, value  # upscaled 8x: 64 x 64 pixels
        centres[value] = hits.mean(axis=0)
    # same time: rows go down with the sample; same sample: columns go right with time
    assert centres[1][0] > centres[2][0] - 1 and centres[3][0] > centres[2][0]
    assert centres[3][1] > centres[1][1] and centres[4][1] > centres[2][1]


def test_filmstrip_image_has_its_labels():
    frames = np.random.default_rng(1).random((2, 1, 1, 8, 8))
    plain = fast.filmstrip_image(frames, [0.0, 1.0])
    titled = fast.filmstrip_image(frames, [0.0, 1.0], fast.filmstrip_title(np.eye(2), 0))
    assert titled.shape[0] > plain.shape[0]  # two title lines
    assert _white_fraction(plain[:, :60]) < 0.99  # "sample 0" left of the row
    assert fast.filmstrip_title(np.eye(2), 3)[0].endswith("generator #3")


@pytest.mark.parametrize("n_steps", [1, 7, 200])
def test_evolution_image(n_steps):
    spectra = np.sort(np.random.default_rng(2).random((n_steps, 4)), axis=1)
    spectra[:, 0] = 0.0  # exact zero: drawn at the floor, not NaN
    image = fast.evolution_image(np.arange(n_steps) * 10, spectra)
    assert image.dtype == np.uint8 and image.shape[0] >= 150 and image.shape[1] >= 250


def _step_labels(image):
    """Number of separate labels in the strip just under the heatmap's frame."""
    frame = (image == np.array([60, 60, 60], dtype=np.uint8)).all(axis=-1)
    bottom = max(r for r in range(frame.shape[0]) if frame[r].sum() >= 100)
    columns = np.flatnonzero(frame[bottom])
    strip = image[bottom + 2 : bottom + 18, columns.min() : columns.max() + 1]
    inked = np.flatnonzero((strip < 128).any(axis=(0, 2)))
    return int(inked.size > 0) + int(np.sum(np.diff(inked) > 5))  # gaps wider than in a label


def test_evolution_image_labels_every_step_that_fits():
    spectra = np.sort(np.random.default_rng(3).random((7, 4)), axis=1)
    assert _step_labels(fast.evolution_image(np.arange(7) * 216, spectra)) == 7
    many = np.sort(np.random.default_rng(3).random((200, 4)), axis=1)
    assert 3 <= _step_labels(fast.evolution_image(np.arange(200) * 216, many)) <= 8


def _has(image, rgb):
    return int((image == np.array(rgb, dtype=np.uint8)).all(axis=-1).sum())


def test_spectrum_image_marks_the_dimensions():
    spec = np.array([1e-9, 1e-8, 1e-2, 1.0])
    plain = fast.spectrum_image(spec)
    marked = fast.spectrum_image(spec, reference_dim=1, symmetry_dim=2)
    assert _has(plain, fast._C0) > 0  # the data
    assert _has(plain, fast._C2) == 0 and _has(plain, fast._C3) == 0
    assert _has(marked, fast._C2) > 100 and _has(marked, fast._C3) > 100  # lines and legend
    zeros = fast.spectrum_image(np.zeros(3), symmetry_dim=0)  # all at the floor: no crash
    assert zeros.dtype == np.uint8


def test_bias_image_bar_heights():
    image = fast.bias_image(np.array([1.0, 0.5, np.nan]))
    orange = (image == np.array(fast._C1, dtype=np.uint8)).all(axis=-1)
    cols = np.flatnonzero(orange.any(axis=0))
    heights = orange.sum(axis=0)[cols]
    full, half = heights.max(), heights[heights > 0].min()
    assert abs(half / full - 0.5) < 0.02
    assert len(np.unique(heights)) == 2  # two bars, the NaN one has none


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match=r"\(k, p, q\)"):
        fast.generators_image(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="frames"):
        fast.filmstrip_image(np.zeros((2, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="symmetry_dim"):
        fast.spectrum_image(np.ones(3), symmetry_dim=7)


def _blocks(image, rgb):
    """Pixel coordinates (rows, columns) of one exact colour."""
    return np.argwhere((image == np.asarray(rgb, dtype=np.uint8)).all(axis=-1))


def test_layer_heatmap_image_places_each_layer_and_step():
    names = [f"layer{i}" for i in range(5)]
    values = np.full((5, 6), 1e-1)
    values[1, 4] = 1e-3  # the lowest: magma's darkest colour, in row 1, column 4
    values[3, 0] = np.nan  # not evaluated: light gray
    image = fast.layer_heatmap_image(names, np.arange(6) * 10, values)
    dark = _blocks(image, fast._lut("magma")[0])
    gray = _blocks(image, fast._NAN_RGB)
    assert len(dark) >= 100 and len(gray) >= 100
    # the dark cell lies right of and above the gray one (row 1 vs 3, column 4 vs 0)
    assert dark[:, 1].mean() > gray[:, 1].mean() and dark[:, 0].mean() < gray[:, 0].mean()
    # one panel of 5 x 6 cells: within a TensorBoard card's proportions, not a strip
    assert image.shape[1] <= 600 and 0.4 <= image.shape[0] / image.shape[1] <= 1.5


def test_layer_heatmap_image_puts_the_reference_panel_beside():
    names = ["net.1 Linear", "net.2 ReLU", "output"]
    values = np.geomspace(1e-4, 1.0, 9).reshape(3, 3)
    one = fast.layer_heatmap_image(names, [0, 10, 20], values)
    two = fast.layer_heatmap_image(names, [0, 10, 20], values, values * 10)
    assert two.shape[0] == one.shape[0]  # a second panel beside, on the same rows
    assert two.shape[1] > one.shape[1] + 60
    # both panels on one colour scale: the largest value (1.0 * 10) is the brightest colour,
    # in the right panel only; the smallest (1e-4) the darkest, in the left one
    bright = _blocks(two, fast._lut("magma")[255])
    dark = _blocks(two, fast._lut("magma")[0])
    bar = two.shape[1] - 70  # the colour bar holds both colours too
    bright, dark = bright[bright[:, 1] < bar], dark[dark[:, 1] < bar]
    assert len(bright) >= 100 and len(dark) >= 100
    assert bright[:, 1].min() > dark[:, 1].max()


def test_layer_heatmap_of_ten_layers_fits_a_card():
    names = [f"net.{i} {'Linear' if i % 2 else 'ReLU'}" for i in range(10)]
    values = np.geomspace(1e-4, 1.0, 70).reshape(10, 7)
    image = fast.layer_heatmap_image(names, np.arange(7) * 10, values, values, title="t")
    height, width = image.shape[:2]
    assert 1.3 <= width / height <= 2.2 and width <= 500, image.shape


def test_layer_heatmap_image_shortens_long_names_from_the_left():
    long = "encoder.layers.11.self_attention.out_projection.linear"
    image = fast.layer_heatmap_image([long, "output"], [0], np.ones((2, 1)) * 0.1)
    assert image.shape[1] <= 600
    assert fast._fit_label(long, 11, 180).startswith("\u2026")
    assert fast._fit_label(long, 11, 180).endswith("linear")
    assert fast._fit_label("output", 11, 180) == "output"


def test_layer_generators_image_one_row_per_layer():
    gens = np.zeros((3, 2, 2, 2))
    gens[0, 0, 0, 0] = 1.0  # layer 0, generator 0: the +1 entry (full red)
    gens[2, 1, 1, 1] = -1.0  # layer 2, generator 1: the -1 entry (full blue)
    image = fast.layer_generators_image(["a", "b", "c"], gens, np.ones((3, 2)), max_generators=2)
    lut = fast._lut("RdBu_r")
    red, blue = _blocks(image, lut[255]), _blocks(image, lut[0])
    assert len(red) >= 20 * 20 and len(blue) >= 20 * 20  # entries upscaled (plus the colour bar)
    panel_red = red[red[:, 1] < image.shape[1] - 80]  # leave out the colour bar
    panel_blue = blue[blue[:, 1] < image.shape[1] - 80]
    assert panel_red[:, 0].mean() < panel_blue[:, 0].mean()  # layer 0 above layer 2
    assert panel_red[:, 1].mean() < panel_blue[:, 1].mean()  # generator 0 left of 1
    three = fast.layer_generators_image(["a", "b", "c"], gens, max_generators=1)
    assert three.shape[1] < image.shape[1]  # one column of panels


def test_layer_generators_image_of_a_deep_network_stays_compact():
    layers = 40
    gens = np.zeros((layers, 4, 2, 2))
    gens[0, 0, 0, 0] = 1.0  # the first layer: full red
    gens[-1, 0, 1, 1] = -1.0  # the last layer: full blue
    names = [f"encoder.layers.{i}.linear" for i in range(layers)]
    image = fast.layer_generators_image(names, gens, np.ones((layers, 4)))
    height, width = image.shape[:2]
    assert height <= 3.2 * width and height < 40 * 60  # several columns, not 40 rows
    lut = fast._lut("RdBu_r")
    red, blue = _blocks(image, lut[255]), _blocks(image, lut[0])
    red, blue = red[red[:, 1] < width - 80], blue[blue[:, 1] < width - 80]  # not the colour bar
    # forward order down each column: the first layer top left, the last one in a later column
    assert red[:, 1].mean() < blue[:, 1].mean() - 100
    assert red[:, 0].mean() < height / 4
    # at most MAX_LAYER_PANELS panels: one generator per layer here (48 // 40)
    blank_generators = np.zeros((layers, 4, 2, 2))
    blank_generators[:, 0, 0, 0] = 1.0  # generator #0: full red somewhere in every layer
    blank_generators[:, 1:] = -1.0  # generators #1-#3 (full blue) are not drawn
    drawn = fast.layer_generators_image(names, blank_generators)
    panels = drawn[:, : drawn.shape[1] - 80]
    assert _blocks(panels, lut[255]).size > 0 and _blocks(panels, lut[0]).size == 0


def test_layer_figures_report_bad_shapes():
    with pytest.raises(ValueError, match=r"shape \(L, S\) = \(2, 3\)"):
        fast.layer_heatmap_image(["a", "b"], [0, 1, 2], np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"\(L, k, p, q\)"):
        fast.layer_generators_image(["a"], np.zeros((2, 2, 2, 2)))

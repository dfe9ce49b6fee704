# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial: does a digits classifier learn rotation invariance?
#
# We train a small MLP on randomly rotated digits with `LieGGCallback`, then read the
# callback's history and draw its figures inline with `lightning_liegg.plotting`. It runs in
# about a minute on a laptop CPU and downloads nothing (scikit-learn's 8x8 digits, upsampled
# to 28x28). Open it as a notebook with `jupytext --to notebook docs/tutorial.py`, or run it
# as a script.

# %%
# %matplotlib inline
import warnings

import pytorch_lightning as pl
import torch

import lightning_liegg as lg
from lightning_liegg import plotting
from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP

torch.set_num_threads(1)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
pl.seed_everything(0, verbose=False)

# %% [markdown]
# ## Train with the callback
#
# `ImageAction()` says how a 2x2 generator acts on an image (on its pixel coordinates);
# the callback searches all of gl(2) (rotations, scalings, shears) and measures, with
# `reference="rotation2d"`, how far the most symmetric direction is from a rotation.
# Classifier logits are L2-normalised first, as in the paper.

# %%
data = RotatedDigitsDataModule(rotate=True, blur_sigma=1.5, copies=4, batch_size=128, seed=0)
model = DigitMLP(data.input_dim, width=128, depth=3, lr=3e-3)
callback = lg.LieGGCallback(
    lg.ImageAction(),
    reference="rotation2d",
    output_transform=lg.l2_normalize,
    num_samples=128,
    print_summary=False,
)
trainer = pl.Trainer(
    max_epochs=3,
    accelerator="cpu",
    callbacks=[callback],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(model, datamodule=data)

# %% [markdown]
# ## The history
#
# One record per evaluation: before training (step 0) and after each validation. Its
# `scalars` are the numbers TensorBoard shows under `liegg/`.

# %%
for record in callback.history:
    s = record.scalars
    print(
        f"step {record.step:4d}  relative variance {s['relative_variance']:.2e}  "
        f"symmetry dim {int(s['symmetry_dim'])}  rotation bias {s['symmetry_bias']:.3f}"
    )

# %%
steps = [record.step for record in callback.history]
fig = plotting.plot_history(
    steps,
    {
        "relative variance (most symmetric)": [
            r.scalars["relative_variance"] for r in callback.history
        ],
        "rotation bias (most symmetric)": [r.scalars["symmetry_bias"] for r in callback.history],
    },
)
fig

# %% [markdown]
# How the whole relative spectrum of gl(2) moved during training: a learned symmetry is a
# direction whose variance drops away from the others.

# %%
plotting.plot_evolution(steps, [record.relative_spectrum for record in callback.history])

# %% [markdown]
# ## The last evaluation in detail
#
# `lg.liegg` runs the same analysis on any tensor of inputs, outside the Trainer, and returns a
# `SymmetryReport`. The most symmetric generator of a rotation-invariant network is close to
# the unit rotation [[0, 0.71], [-0.71, 0]] (up to sign), with a small rotation bias.

# %%
images = torch.cat([x for x, _ in data.val_dataloader()])[:128]
report = lg.liegg(
    model, images, lg.ImageAction(), output_transform=lg.l2_normalize, reference="rotation2d"
)
print(report)

# %%
plotting.plot_generators(report.generators, report.relative_spectrum, report.symmetry_bias)

# %%
plotting.plot_spectrum(report.relative_spectrum, reference_dim=1, symmetry_dim=report.symmetry_dim)

# %% [markdown]
# A filmstrip: four validation digits moved along exp(t h) of the most symmetric generator h.
# The network's prediction should not change along a row.

# %%
times = torch.linspace(-1.5, 1.5, 7)
frames = lg.ImageAction().transform(images[:4], report.generators[0], times)
plotting.plot_filmstrip(frames, times)

"""Figures from synthetic tables shaped like a finished run."""

import numpy as np
import pytest
from PIL import Image

import synthetic_study as synth
import hiddengauss.figures as figures_mod
from hiddengauss.figures import FigureData, draw, image_grid
from hiddengauss.study import FIGURES


@pytest.fixture(scope="module")
def figure_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    synth.write_samples(root)
    run, epoch = synth.study().showcase()
    return FigureData(
        synth.build_tables(),
        samples_path=lambda run, epoch: root / "samples" / run / f"epoch{epoch}.h5",
        gaussian_samples_path=lambda subset: root / "samples" / "gaussian" / f"{subset}.h5",
        closed_form_samples_path=lambda run, epoch: root / "samples" / run / f"epoch{epoch}_closed_forms.h5",
        training_images=synth.training_images,
        options={**synth.study().config["figures"], "dpi": 60, "showcase": [run.id, epoch]},
    )


def test_the_config_draws_every_registered_figure():
    assert synth.study().figures() == sorted(FIGURES)


def test_every_drawing_function_is_registered_and_every_record_draws():
    drawing = {n for n in dir(figures_mod) if n.endswith("_figure") and callable(getattr(figures_mod, n))}
    assert drawing == {f.draw for f in FIGURES.values()}
    for f in FIGURES.values():
        assert f.samples in ("none", "showcase", "experiment", "pairs", "closed_forms") and f.experiments


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_is_a_non_empty_image_of_the_figure_size(name, figure_data, tmp_path):
    figure_data.figure, figure_data.options = FIGURES[name], {**synth.study().figure_options(name), "dpi": 60}
    fig = getattr(figures_mod, FIGURES[name].draw)(figure_data)
    w, h = (fig.get_size_inches() * 60).round().astype(int)
    draw(name, figure_data, tmp_path / "f.png", tmp_path / "f.pdf")
    img = np.asarray(Image.open(tmp_path / "f.png").convert("L"), dtype=float)
    assert abs(img.shape[1] - w) <= 1 and abs(img.shape[0] - h) <= 1
    assert w >= 400 and h >= 200
    assert (img < 250).mean() > 0.02, "the image is (nearly) blank"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"


def test_captions_are_the_figure_docstrings_without_importing_figure_code():
    import subprocess
    import sys

    from hiddengauss.captions import figure_description

    config = synth.study().config
    for name, figure in FIGURES.items():
        doc = " ".join((getattr(figures_mod, figure.draw).__doc__ or "").split())
        assert len(doc) > 40 and figure_description(name, config).startswith(doc)
    probe = "import sys, hiddengauss.captions, hiddengauss.study; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]  # Snakemake evaluates captions on every invocation


def test_images_are_clamped_not_stretched():
    grid = image_grid([np.array([[-3.0, -1.0, 0.0, 0.5]]), np.array([[0.0, 0.0, 0.0, 0.0]])], (1, 2, 2), pad=0)
    np.testing.assert_allclose(grid[:2, :2], [[0.0, 0.0], [0.5, 0.75]])
    np.testing.assert_allclose(grid[2:, :2], 0.5)  # a flat image stays mid-grey, not stretched to black/white


def test_missing_experiment_is_named(tmp_path):
    tables = synth.build_tables()
    tables["runs"] = tables["runs"][tables["runs"]["experiment"] != "model_scale"]
    with pytest.raises(ValueError, match="model_scale"):
        draw("model_scale", FigureData(tables, options=synth.study().figure_options("model_scale")), tmp_path / "f.png")



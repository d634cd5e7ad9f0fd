"""Rule train: one EDM training run with checkpoints on its epoch grid (on training.gpus
data-parallel processes when that is above 1)."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.dataset import read_images
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.splits import load_split
from hiddengauss.training import Hardware, TrainSpec, train

# the guard: with training.gpus > 1 each rank is a spawned process that imports this file again
if __name__ == "__main__":
    with script_logging(snakemake.log[0]) as log:
        set_threads(snakemake.threads)
        hw = dict(snakemake.params.hardware, gpus=int(snakemake.resources.gpu))  # training.gpus, a resource: no rerun
        hw["device"] = str(resolve_device(hw["device"]))
        idx = load_split(snakemake.input.split)
        images = read_images(snakemake.input.data, idx)
        spec = TrainSpec(
            **snakemake.params.spec, n_images=len(images),
            img_resolution=images.shape[-1], img_channels=images.shape[1],
        )  # fmt: skip
        loss_log = train(spec, images, snakemake.output.checkpoints, snakemake.params.state_dir, Hardware(**hw),
                         log_file=snakemake.log[0])  # fmt: skip
        write_csv(pd.DataFrame(loss_log), snakemake.output.loss)

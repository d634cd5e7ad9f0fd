"""Rule prepare_dataset: one configured image source -> one HDF5 file of uint8 images."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.dataset import write_dataset_h5
from hiddengauss.sources import load_source
from hiddengauss.io import script_logging

with script_logging(snakemake.log[0]) as log:
    spec = dict(snakemake.params.spec)
    data = load_source(spec, log=log)
    log.info("loaded %d images of shape %s from %s", len(data.images), data.images.shape[1:], data.attrs["path"])
    write_dataset_h5(snakemake.output[0], data, spec)

"""Rule import_network: a network trained elsewhere (config pretrained) checked against the run
it stands in for and written as that run's one checkpoint."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.convert import NetworkMismatchError, import_checkpoint, load_external
from hiddengauss.dataset import read_images
from hiddengauss.io import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params.plan
    c, h, w = read_images(snakemake.input.data, [0]).shape[1:]
    shape = {"img_resolution": int(h), "in_channels": int(c)}
    ext = load_external(snakemake.input.network, p["format"], {**p["network"], **shape}, key=p["key"])
    where = snakemake.input.network
    for k in ("p_mean", "p_std"):  # a snapshot's loss record says what it was trained on
        if k in ext.source and abs(ext.source[k] - p[k]) > 1e-9:
            raise NetworkMismatchError(f"{where}: trained with {k} {ext.source[k]}, but config pretrained says {p[k]}")
    path = import_checkpoint(ext, snakemake.output.checkpoints, p["epoch"], p["images_seen"], {**p["expect"], **shape})
    log.info("%s (%s, sha256 %s): %s as %s -> %s (epoch %d, %d images seen)", where, ext.source["format"],
             snakemake.params.sha256[:12], ext.source.get("backbone", "state dict"), ext.network["arch"], path, p["epoch"],
             p["images_seen"])  # fmt: skip

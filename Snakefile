# Reference pipeline for Li, Dai & Qu (NeurIPS 2024), "Understanding Generalizability of
# Diffusion Models Requires Rethinking the Hidden Gaussian Structure".
# Run from the repository root:  snakemake --cores all   (see README.md)
from snakemake.utils import min_version

min_version("9.1.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/gaussian.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/figures.smk"


localrules:
    all,
    spectrum_table,
    collect_table,
    runs_table,
    memorization_time,
    figure,
    claims,


rule all:
    default_target: True
    input:
        get_final_output(),

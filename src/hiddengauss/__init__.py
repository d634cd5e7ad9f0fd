"""hiddengauss: the science behind the pipeline.

Every paper equation lives in exactly one function of this package; the Snakemake
scripts under ``workflow/scripts`` only read inputs, call these functions and write outputs.
"""

__version__ = "0.1.0"

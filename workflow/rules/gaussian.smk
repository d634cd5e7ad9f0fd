rule fit_gaussian:
    input:
        data=DATA.format(datafile="dataset"),
        split=SPLIT.format(split="{subset}"),
    output:
        GAUSSIAN,
    log:
        f"{RESULTS}/logs/fit_gaussian/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_gaussian/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        chunk_size=config["gaussian"]["chunk_size"],
        store_dtype=config["gaussian"]["store_dtype"],
        method=config["gaussian"]["method"],
        device=config["gaussian"]["device"],
    script:
        "../scripts/fit_gaussian.py"


rule spectrum_table:
    input:
        expand(GAUSSIAN, subset=study.training_subsets),
    output:
        report(
            TABLE.format(table="spectrum"),
            caption="../report/spectrum.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/spectrum_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/spectrum_table.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    script:
        "../scripts/spectrum_table.py"

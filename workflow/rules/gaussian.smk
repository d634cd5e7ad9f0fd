rule fit_gaussian:
    input:
        data=f"{RESULTS}/data/dataset.h5",
        split=f"{RESULTS}/splits/{{subset}}.h5",
    output:
        f"{RESULTS}/gaussian/{{subset}}.h5",
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
        device=config["gaussian"]["device"],
    script:
        "../scripts/fit_gaussian.py"


rule spectrum_table:
    input:
        gaussian_models(),
    output:
        report(
            f"{RESULTS}/tables/spectrum.csv",
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

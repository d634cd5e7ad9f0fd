rule runs_table:
    input:
        checkpoints=expand(CHECKPOINTS, run=sorted(study.runs)),
    output:
        report(
            TABLE.format(table="runs"), caption="../report/runs.rst", category="Tables"
        ),
    log:
        f"{RESULTS}/logs/runs_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/runs_table.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        rows=study.experiment_rows(),
        runs=sorted(study.runs),
    script:
        "../scripts/runs_table.py"


rule figure:
    input:
        unpack(get_figure_inputs),
    output:
        png=report(
            f"{RESULTS}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf=f"{RESULTS}/figures/{{figure}}.pdf",
    log:
        f"{RESULTS}/logs/figure/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figure/{{figure}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        options=get_figure_options,
        caption=get_figure_caption,
        samples=get_figure_samples,
    script:
        "../scripts/figure.py"


rule claims:
    input:
        unpack(get_claims_inputs),
    output:
        report(
            f"{RESULTS}/claims.csv", caption="../report/claims.rst", category="Claims"
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        claims=config["claims"],
    script:
        "../scripts/claims.py"

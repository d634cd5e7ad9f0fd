rule distill:
    input:
        checkpoints=lambda wc: f"{RESULTS}/runs/{wc.run}/checkpoints",
        inputs=analysis_inputs,
        gaussian=lambda wc: f"{RESULTS}/gaussian/{Run.parse(wc.run).subset}.h5",
    output:
        linear=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/linear.h5",
        table=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/distillation.csv",
        eigen_diagonal=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/eigen_diagonal.csv",
    log:
        f"{RESULTS}/logs/distill/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distill/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        analysis=section_params(
            "analysis", "sigmas", "distill", "noise_seed", "batch_size", "device"
        ),
    script:
        "../scripts/distill.py"


rule measure_denoisers:
    input:
        checkpoints=lambda wc: f"{RESULTS}/runs/{wc.run}/checkpoints",
        inputs=analysis_inputs,
        gaussian=lambda wc: f"{RESULTS}/gaussian/{Run.parse(wc.run).subset}.h5",
        train_split=lambda wc: f"{RESULTS}/splits/{Run.parse(wc.run).subset}.h5",
        data=f"{RESULTS}/data/dataset.h5",
        linear=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/linear.h5",
    output:
        linearity=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/linearity.csv",
        distances=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/denoiser_distances.csv",
    log:
        f"{RESULTS}/logs/measure_denoisers/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/measure_denoisers/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        analysis=section_params(
            "analysis",
            "sigmas",
            "linearity_sigmas",
            "alphas",
            "n_pairs",
            "n_inputs",
            "noise_seed",
            "device",
        ),
    script:
        "../scripts/measure_denoisers.py"


rule gaussian_linearity:
    input:
        inputs=lambda wc: analysis_inputs(wc, subset=wc.subset),
        gaussian=f"{RESULTS}/gaussian/{{subset}}.h5",
    output:
        f"{RESULTS}/eval/gaussian/{{subset}}/linearity.csv",
    log:
        f"{RESULTS}/logs/gaussian_linearity/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gaussian_linearity/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        analysis=section_params(
            "analysis", "linearity_sigmas", "alphas", "n_pairs", "noise_seed"
        ),
    script:
        "../scripts/gaussian_linearity.py"


rule collect_table:
    input:
        lambda wc: table_sources(wc.table)[0],
    output:
        report(
            f"{RESULTS}/tables/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/collect_table/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect_table/{{table}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        key_columns=lambda wc: table_sources(wc.table)[1],
    script:
        "../scripts/collect_table.py"

rule distill:
    input:
        checkpoints=CHECKPOINTS,
        inputs=get_run_analysis_inputs,
        gaussian=get_run_gaussian,
    output:
        linear=f"{EVAL}/linear.h5",
        table=f"{EVAL}/distillation.csv",
        eigen_diagonal=f"{EVAL}/eigen_diagonal.csv",
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
        checkpoints=CHECKPOINTS,
        inputs=get_run_analysis_inputs,
        gaussian=get_run_gaussian,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
        linear=f"{EVAL}/linear.h5",
        closed_forms=get_run_closed_form_outputs,
    output:
        distances=f"{EVAL}/denoiser_distances.csv",
        distance_items=f"{EVAL}/distance_items.csv",
        els_calibration=f"{EVAL}/els_calibration.csv",
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
            "analysis", "sigmas", "n_inputs", "noise_seed", "device"
        ),
        closed_form_inputs=CLOSED_FORM_SETTINGS,
    script:
        "../scripts/measure_denoisers.py"


rule linearity:
    input:
        checkpoints=CHECKPOINTS,
        inputs=get_run_analysis_inputs,
    output:
        linearity=f"{EVAL}/linearity.csv",
        linearity_items=f"{EVAL}/linearity_items.csv",
    log:
        f"{RESULTS}/logs/linearity/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/linearity/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        analysis=LINEARITY_SETTINGS,
        device=config["analysis"]["device"],
    script:
        "../scripts/linearity.py"


rule closed_form_outputs:
    input:
        inputs=get_subset_analysis_inputs,
        gaussian=GAUSSIAN,
        train_split=SPLIT.format(split="{subset}"),
        data=DATA.format(datafile="dataset"),
    output:
        CLOSED_FORM_OUTPUTS,
    log:
        f"{RESULTS}/logs/closed_form_outputs/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/closed_form_outputs/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        settings=CLOSED_FORM_SETTINGS,
        device=config["analysis"]["device"],
    script:
        "../scripts/closed_form_outputs.py"


rule gaussian_linearity:
    input:
        inputs=get_subset_analysis_inputs,
        gaussian=GAUSSIAN,
    output:
        BASELINE.format(subset="{subset}", table="linearity"),
    log:
        f"{RESULTS}/logs/gaussian_linearity/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gaussian_linearity/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        analysis=LINEARITY_SETTINGS,
    script:
        "../scripts/gaussian_linearity.py"


rule collect_table:
    input:
        get_table_sources,
    output:
        report(TABLE, caption="../report/table.rst", category="Tables"),
    log:
        f"{RESULTS}/logs/collect_table/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect_table/{{table}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        key_columns=lambda wc: [keys for _, keys in study.table_units(wc.table)],
        columns=lambda wc: plan.TABLES[wc.table].columns,
    script:
        "../scripts/collect_table.py"

# Issue 20: how the sampler unfolds (experiment sampler_dynamics; docs/science.md section 15).


rule step_count:
    input:
        checkpoints=CHECKPOINTS,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
    output:
        EVAL_TABLE.format(run="{run}", epoch="{epoch}", table="step_count"),
    log:
        f"{RESULTS}/logs/step_count/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/step_count/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        settings=experiment_settings("sampler_dynamics", *STEP_COUNT_KEYS),
        sampling=section_params("sampling", "seed_offset", "device"),
    script:
        "../scripts/step_count.py"


rule gaussian_step_count:
    input:
        gaussian=GAUSSIAN,
        train_split=SPLIT.format(split="{subset}"),
        data=DATA.format(datafile="dataset"),
    output:
        BASELINE.format(subset="{subset}", table="step_count"),
    log:
        f"{RESULTS}/logs/gaussian_step_count/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gaussian_step_count/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    params:
        settings=experiment_settings("sampler_dynamics", *STEP_COUNT_KEYS),
        sampling=section_params("sampling", "seed_offset", "device"),
    script:
        "../scripts/step_count.py"


rule posterior:
    input:
        checkpoints=CHECKPOINTS,
        inputs=get_run_analysis_inputs,
        gaussian=get_run_gaussian,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
    output:
        EVAL_TABLE.format(run="{run}", epoch="{epoch}", table="posterior"),
    log:
        f"{RESULTS}/logs/posterior/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/posterior/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=60,
    params:
        settings=experiment_settings("sampler_dynamics", *POSTERIOR_KEYS),
        analysis=section_params("analysis", "noise_seed", "device"),
    script:
        "../scripts/posterior.py"


COMMITMENT_TABLES = ("trajectory_dimension", "trajectory_modes", "perturbation")


rule commitment:
    input:
        checkpoints=CHECKPOINTS,
        gaussian=get_run_gaussian,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
    output:
        **{
            t: EVAL_TABLE.format(run="{run}", epoch="{epoch}", table=t)
            for t in COMMITMENT_TABLES
        },
    log:
        f"{RESULTS}/logs/commitment/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/commitment/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=60,
    params:
        settings=experiment_settings("sampler_dynamics", *COMMITMENT_KEYS),
        sampling=section_params("sampling", "seed_offset", "device"),
    script:
        "../scripts/commitment.py"


rule gaussian_commitment:
    input:
        gaussian=GAUSSIAN,
        train_split=SPLIT.format(split="{subset}"),
        data=DATA.format(datafile="dataset"),
    output:
        **{t: BASELINE.format(subset="{subset}", table=t) for t in COMMITMENT_TABLES},
    log:
        f"{RESULTS}/logs/gaussian_commitment/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gaussian_commitment/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    params:
        settings=experiment_settings("sampler_dynamics", *COMMITMENT_KEYS),
        sampling=section_params("sampling", "seed_offset", "device"),
    script:
        "../scripts/commitment.py"

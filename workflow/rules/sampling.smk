rule sample_gaussian:
    input:
        gaussian=GAUSSIAN,
        train_split=SPLIT.format(split="{subset}"),
        data=DATA.format(datafile="dataset"),
    output:
        GAUSSIAN_SAMPLES,
    log:
        f"{RESULTS}/logs/sample_gaussian/{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_gaussian/{{subset}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        sampling=section_params("sampling", *SAMPLE_KEYS),
    script:
        "../scripts/sample_gaussian.py"


rule sample_checkpoint:
    input:
        checkpoints=CHECKPOINTS,
        linear=f"{EVAL}/linear.h5",
    output:
        SAMPLES,
    log:
        f"{RESULTS}/logs/sample_checkpoint/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_checkpoint/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        sampling=section_params("sampling", *SAMPLE_KEYS, "device"),
        linear_samplers=study.linear_samplers(),
    script:
        "../scripts/sample_checkpoint.py"


rule sample_closed_forms:
    input:
        unpack(get_closed_form_inputs),
    output:
        samples=CLOSED_FORM_SAMPLES,
        table=f"{EVAL}/closed_form_generalization.csv",
    log:
        f"{RESULTS}/logs/sample_closed_forms/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_closed_forms/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        sampling=section_params("sampling", *SAMPLE_KEYS, "device"),
        baselines=section_params(
            "baselines", *BASELINE_KEYS, "n_samples", "els_samples"
        ),
    script:
        "../scripts/sample_closed_forms.py"


rule generalization:
    input:
        samples=SAMPLES,
        gaussian_samples=get_run_gaussian_samples,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
    output:
        table=f"{EVAL}/generalization.csv",
        per_sample=f"{EVAL}/generalization_items.csv",
    log:
        f"{RESULTS}/logs/generalization/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generalization/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    script:
        "../scripts/generalization.py"


rule teleportation:
    input:
        checkpoints=CHECKPOINTS,
        gaussian=get_run_gaussian,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
    output:
        f"{EVAL}/teleportation.csv",
    log:
        f"{RESULTS}/logs/teleportation/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/teleportation/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        sampling=section_params(
            "sampling",
            "n_samples",
            "seed_offset",
            "teleport_sampler",
            "teleport_skips",
            "teleport_samples",
            "batch_size",
            "device",
        ),
    script:
        "../scripts/teleportation.py"


rule strong_generalization:
    input:
        unpack(get_pair_inputs),
    output:
        table=PAIR.format(pair="{pair}", table="strong_generalization"),
        per_latent=PAIR.format(pair="{pair}", table="strong_generalization_items"),
    log:
        f"{RESULTS}/logs/strong_generalization/{{pair}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/strong_generalization/{{pair}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        pair=lambda wc: study.pair(wc.pair),
        samplers=config["sampling"]["samplers"],
    script:
        "../scripts/strong_generalization.py"


rule distributions:
    input:
        unpack(get_pair_inputs),
    output:
        table=PAIR.format(pair="{pair}", table="distributions"),
        contrasts=PAIR.format(pair="{pair}", table="distribution_contrasts"),
    log:
        f"{RESULTS}/logs/distributions/{{pair}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distributions/{{pair}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        distributions=config["distributions"],
    script:
        "../scripts/distributions.py"


rule memorization_curve:
    input:
        checkpoints=CHECKPOINTS,
        train_split=get_run_split,
        data=DATA.format(datafile="dataset"),
        heldout_split=SPLIT.format(split="heldout"),
        heldout_data=split_data("heldout"),
    output:
        table=EVAL_TABLE.format(
            run="{run}", epoch="{epoch}", table="memorization_curve"
        ),
        per_sample=EVAL_TABLE.format(
            run="{run}", epoch="{epoch}", table="memorization_items"
        ),
    log:
        f"{RESULTS}/logs/memorization_curve/{{run}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/memorization_curve/{{run}}_epoch{{epoch}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=60,
    params:
        settings=experiment_settings("memorization_time"),
        sampling=section_params("sampling", *MEMORIZATION_SAMPLE_KEYS),
    script:
        "../scripts/memorization_curve.py"


rule memorization_time:
    input:
        curve=TABLE.format(table="memorization_curve"),
        per_sample=TABLE.format(table="memorization_items"),
        runs=TABLE.format(table="runs"),
    output:
        report(
            TABLE.format(table="memorization_time"),
            caption="../report/memorization_time.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/memorization_time.log",
    benchmark:
        f"{RESULTS}/benchmarks/memorization_time.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        settings=experiment_settings("memorization_time"),
    script:
        "../scripts/memorization_time.py"

rule sample_gaussian:
    input:
        gaussian=f"{RESULTS}/gaussian/{{subset}}.h5",
        train_split=f"{RESULTS}/splits/{{subset}}.h5",
        data=f"{RESULTS}/data/dataset.h5",
    output:
        f"{RESULTS}/samples/gaussian/{{subset}}.h5",
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
        checkpoints=lambda wc: f"{RESULTS}/runs/{wc.run}/checkpoints",
        linear=f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/linear.h5",
    output:
        f"{RESULTS}/samples/{{run}}/epoch{{epoch}}.h5",
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
    script:
        "../scripts/sample_checkpoint.py"


rule generalization:
    input:
        samples=f"{RESULTS}/samples/{{run}}/epoch{{epoch}}.h5",
        gaussian_samples=lambda wc: f"{RESULTS}/samples/gaussian/{Run.parse(wc.run).subset}.h5",
        train_split=lambda wc: f"{RESULTS}/splits/{Run.parse(wc.run).subset}.h5",
        data=f"{RESULTS}/data/dataset.h5",
    output:
        f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/generalization.csv",
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
        checkpoints=lambda wc: f"{RESULTS}/runs/{wc.run}/checkpoints",
        gaussian=lambda wc: f"{RESULTS}/gaussian/{Run.parse(wc.run).subset}.h5",
        train_split=lambda wc: f"{RESULTS}/splits/{Run.parse(wc.run).subset}.h5",
        data=f"{RESULTS}/data/dataset.h5",
    output:
        f"{RESULTS}/eval/{{run}}/epoch{{epoch}}/teleportation.csv",
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
            "device",
        ),
    script:
        "../scripts/teleportation.py"


rule strong_generalization:
    input:
        unpack(pair_inputs),
    output:
        f"{RESULTS}/eval/pairs/{{pair}}.csv",
    log:
        f"{RESULTS}/logs/strong_generalization/{{pair}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/strong_generalization/{{pair}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        pair=lambda wc: pair_info(wc.pair),
        samplers=config["sampling"]["samplers"],
    script:
        "../scripts/strong_generalization.py"

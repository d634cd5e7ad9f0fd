rule prepare_dataset:
    output:
        f"{RESULTS}/data/{{which}}.h5",
    log:
        f"{RESULTS}/logs/prepare_dataset/{{which}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_dataset/{{which}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        spec=lambda wc: data_source(wc.which),
    script:
        "../scripts/prepare_dataset.py"


rule split_dataset:
    input:
        data=lambda wc: split_source(wc.split),
    output:
        f"{RESULTS}/splits/{{split}}.h5",
    log:
        f"{RESULTS}/logs/split_dataset/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/split_dataset/{{split}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        seed=config["splits"]["seed"],
        held_out=lambda wc: (
            config["evaluation"]["size"]
            if wc.split == "heldout" or not study.external_evaluation
            else 0
        ),
        external=lambda wc: wc.split == "heldout" and study.external_evaluation,
    script:
        "../scripts/split_dataset.py"

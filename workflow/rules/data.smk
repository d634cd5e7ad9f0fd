rule prepare_dataset:
    output:
        DATA,
    log:
        f"{RESULTS}/logs/prepare_dataset/{{datafile}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_dataset/{{datafile}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        spec=lambda wc: study.data_source(wc.datafile),
    script:
        "../scripts/prepare_dataset.py"


rule split_dataset:
    input:
        data=get_split_data,
    output:
        SPLIT,
    log:
        f"{RESULTS}/logs/split_dataset/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/split_dataset/{{split}}.tsv"
    conda:
        "../../envs/hiddengauss.yaml"
    params:
        seed=config["splits"]["seed"],
        held_out=lambda wc: study.split_plan(wc.split)["held_out"],
        external=lambda wc: study.split_plan(wc.split)["external"],
    script:
        "../scripts/split_dataset.py"

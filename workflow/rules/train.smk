rule train:
    input:
        data=DATA.format(datafile="dataset"),
        split=get_run_split,
    output:
        checkpoints=directory(CHECKPOINTS),
        loss=f"{RESULTS}/runs/{{run}}/loss.csv",
    log:
        f"{RESULTS}/logs/train/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{run}}.tsv"
    wildcard_constraints:
        run=one_of(study.trained_runs()),
    conda:
        "../../envs/hiddengauss.yaml"
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["gpus"],
        mem_mb=16000,
        runtime=2880,
    params:
        spec=lambda wc: study.train_spec(plan.Run.parse(wc.run)),
        hardware=section_params("training", "device", "tf32", "bf16", "compile"),
        state_dir=f"{RESULTS}/runs/{{run}}/state",
    script:
        "../scripts/train.py"


# a network trained elsewhere (config pretrained) becomes its run's one checkpoint
rule import_network:
    input:
        network=get_pretrained_file,
        data=DATA.format(datafile="dataset"),
    output:
        checkpoints=directory(CHECKPOINTS),
    log:
        f"{RESULTS}/logs/import_network/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_network/{{run}}.tsv"
    wildcard_constraints:
        run=one_of(sorted(study.pretrained)),
    conda:
        "../../envs/hiddengauss.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=30,
    params:
        plan=lambda wc: study.pretrained_plan(plan.Run.parse(wc.run)),
        sha256=lambda wc: pretrained_sha256(PRETRAINED_FILES[wc.run]),
    script:
        "../scripts/import_network.py"

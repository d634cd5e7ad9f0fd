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
    conda:
        "../../envs/hiddengauss.yaml"
    threads: config["training"]["threads"]
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=2880,
    params:
        spec=lambda wc: study.train_spec(plan.Run.parse(wc.run)),
        hardware=section_params("training", "device", "tf32", "bf16", "compile"),
        state_dir=f"{RESULTS}/runs/{{run}}/state",
    script:
        "../scripts/train.py"

rule train:
    input:
        data=f"{RESULTS}/data/dataset.h5",
        split=lambda wc: f"{RESULTS}/splits/{Run.parse(wc.run).subset}.h5",
    output:
        checkpoints=directory(f"{RESULTS}/runs/{{run}}/checkpoints"),
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
        spec=lambda wc: train_spec(wc.run),
        hardware=hardware_params(config["training"]),
        state_dir=lambda wc: f"{RESULTS}/runs/{wc.run}/state",
    script:
        "../scripts/train.py"

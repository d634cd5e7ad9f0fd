#!/usr/bin/env bash
# A real single-node Slurm on localhost (recipe: shared docs snakemake_slurm.md 3.3), then the
# smoke config through `snakemake --profile slurm` against a local run of the same config:
#   - every GPU rule's job ran under Slurm on partition gpu with a GPU allocated (rule logs),
#   - the tables and claims equal those of the local run (same rows, labels and verdicts; numbers
#     to 1e-8 relative: a Slurm job's BLAS/LAPACK may round differently from the local run's).
# Both runs stop short of the figures (--omit-from figure: 96 of 107 jobs; the figures are CPU
# jobs drawn from the compared tables, and the pytest suite draws them) to keep CI short. With
# SMOKE_REFERENCE set to a folder where the pytest smoke test left its tables and claims
# (.ci/run: HIDDENGAUSS_SMOKE_REFERENCE), those are the local run and it is not repeated.
# Needs root and apt (Debian's slurm packages); skipped with a message where it cannot run.
# Usage: bash .ci/slurm_test.sh   (VENV=.venv, SLURM_TEST_TIMEOUT=1500 seconds per snakemake run,
#                                  SMOKE_REFERENCE=folder of a local run's results/smoke tables)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
LIMIT=${SLURM_TEST_TIMEOUT:-1500}
skip() { echo "== slurm test SKIPPED: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (it starts munge, slurmctld and slurmd)"
command -v apt-get > /dev/null || skip "needs apt-get to install Debian's slurm packages"
if [ -e /etc/slurm/slurm.conf ] && ! grep -q "^ClusterName=hiddengauss-ci" /etc/slurm/slurm.conf; then
    skip "this machine has its own /etc/slurm/slurm.conf; not touching a real cluster's configuration"
fi
export PATH="$VENV/bin:$PATH" # jobs run `python -m snakemake` from the submitting environment
WORK=$(mktemp -d /tmp/hiddengauss-slurm.XXXXXX)
echo "== slurm test in $WORK"

echo "== installing munge and slurm"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq > "$WORK/apt.log" 2>&1 || { tail "$WORK/apt.log"; exit 1; }
apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >> "$WORK/apt.log" 2>&1 \
    || { tail "$WORK/apt.log"; exit 1; }

PIDFILES=(/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid)
FAKE_GPU=""
cleanup() {
    set +e
    command -v scancel > /dev/null && scancel --user=root > /dev/null 2>&1
    for f in "${PIDFILES[@]}"; do # read each PID first: the daemons delete their pidfile
        if [ -s "$f" ]; then
            pid=$(cat "$f")
            kill "$pid" 2> /dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2> /dev/null
        fi
    done
    [ -n "$FAKE_GPU" ] && rm -f $FAKE_GPU
    echo "== slurm daemons stopped"
}
trap cleanup EXIT

echo "== starting munge, slurmctld, slurmd"
mkdir -p /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --force 2> /dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
runuser -u munge -- /usr/sbin/munged
munge -n | unmunge > /dev/null
# Slurm's GPU gres needs device files; a GPU-less CI gets two fake ones (two GPU jobs at once)
for i in 0 1; do
    if [ ! -e /dev/nvidia$i ]; then
        mknod /dev/nvidia$i c 195 $i
        FAKE_GPU="$FAKE_GPU /dev/nvidia$i"
    fi
done
HOST=$(hostname -s)
getent hosts "$HOST" > /dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
cat > /etc/slurm/slurm.conf << EOF
ClusterName=hiddengauss-ci
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
ReturnToService=2
NodeName=$HOST CPUs=$(nproc) RealMemory=$MEM Gres=gpu:fake:2 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
echo "NodeName=$HOST Name=gpu Type=fake File=/dev/nvidia[0-1]" > /etc/slurm/gres.conf
slurmctld
slurmd
for _ in $(seq 60); do [ "$(sinfo -h -o %T 2> /dev/null)" = idle ] && break; sleep 1; done
[ "$(sinfo -h -o %T)" = idle ] || { echo "slurm node not idle:"; sinfo; tail -20 /var/log/slurm/slurmd.log; exit 1; }
sinfo

# The repository's slurm profile with what a CI site changes: status by squeue (no slurmdbd
# here), quick status checks, and requests that fit this node (its CPUs, memory, GPUs).
mkdir -p "$WORK/profile"
python - "$ROOT/profiles/slurm/config.v8+.yaml" "$WORK/profile/config.v8+.yaml" "$(nproc)" "$MEM" << 'EOF'
import sys, yaml
src, dst, cpus, mem = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
p = yaml.safe_load(open(src))
p.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 2, "jobs": 4,
          "latency-wait": 5, "retries": 0, "slurm-keep-successful-logs": True})
p["default-resources"].update(runtime=30, mem_mb=min(1000, mem // 4))
for rule, res in p["set-resources"].items():
    assert res["slurm_partition"] == "gpu", rule
    res.update(cpus_per_gpu=1, mem_mb=min(1500, mem // 2), runtime=30)
yaml.safe_dump(p, open(dst, "w"), sort_keys=False)
EOF

LOCAL="$WORK/local"
if [ -n "${SMOKE_REFERENCE:-}" ] && [ -s "$SMOKE_REFERENCE/results/smoke/claims.csv" ]; then
    LOCAL=$SMOKE_REFERENCE
    echo "== local run of the smoke config: the pytest smoke test's ($LOCAL)"
else
    echo "== local run of the smoke config"
    start=$SECONDS
    timeout -s KILL "$LIMIT" python -m snakemake --cores 2 -d "$LOCAL" --configfile config/smoke.yaml --omit-from figure -q > "$WORK/local.log" 2>&1 \
        || { tail -30 "$WORK/local.log"; exit 1; }
    echo "   $((SECONDS - start)) s"
fi
echo "== the same config through the slurm profile"
start=$SECONDS
timeout -s KILL "$LIMIT" python -m snakemake --profile "$WORK/profile" -d "$WORK/slurm" --configfile config/smoke.yaml --omit-from figure > "$WORK/slurm.log" 2>&1 \
    || { tail -40 "$WORK/slurm.log"; tail -20 /var/log/slurm/slurmctld.log; exit 1; }
echo "   $((SECONDS - start)) s, $(grep -c 'has been submitted with SLURM jobid' "$WORK/slurm.log") jobs submitted to slurm"

python - "$WORK" "$LOCAL" << 'EOF'
import re, sys
from pathlib import Path
work, local = Path(sys.argv[1]), Path(sys.argv[2])
log = (work / "slurm.log").read_text()
submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
assert submitted, "no job was submitted to slurm"
logs = work / "slurm" / "results" / "smoke" / "logs"
gpu_rules = ["train", "distill", "measure_denoisers", "linearity", "closed_form_outputs", "sample_checkpoint", "sample_closed_forms",
             "teleportation", "memorization_curve", "step_count", "posterior", "commitment"]
for rule in gpu_rules:
    files = sorted((logs / rule).glob("*.log"))
    assert files, f"no {rule} logs"
    for f in files:
        m = re.search(r"slurm: (.*)", f.read_text())
        assert m, f"{f}: the job did not run under slurm"
        env = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
        assert env.get("SLURM_JOB_PARTITION") == "gpu", f"{f}: {env}"
        gpus = env.get("SLURM_JOB_GPUS", env.get("CUDA_VISIBLE_DEVICES", ""))
        assert gpus in ("0", "1"), f"{f}: no (single) GPU allocated: {env}"
    print(f"   {rule}: {len(files)} jobs ran on partition gpu with a GPU allocated")
cpu = [f for f in logs.rglob("*.log") if f.parent.name in ("fit_gaussian", "prepare_dataset")]
for f in cpu:
    assert "SLURM_JOB_PARTITION=gpu" not in f.read_text(), f
import numpy as np
import pandas as pd
tables = sorted((local / "results" / "smoke" / "tables").glob("*.csv")) + [local / "results/smoke/claims.csv"]
identical, worst = 0, 0.0
for t in tables:
    twin = work / "slurm" / t.relative_to(local)
    identical += t.read_bytes() == twin.read_bytes()
    a, b = pd.read_csv(t), pd.read_csv(twin)
    assert list(a.columns) == list(b.columns) and len(a) == len(b), f"{twin}: other rows or columns than {t}"
    num = a.select_dtypes("number").columns
    pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num), obj=str(twin))
    close = np.isclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-8, atol=1e-10, equal_nan=True)
    assert close.all(), f"{twin}: {(~close).sum()} values differ from {t} beyond rtol 1e-8"
    worst = max(worst, float(np.nanmax(np.abs(a[num].to_numpy(float) - b[num].to_numpy(float)), initial=0)))
print(f"   {len(tables)} tables equal to the local run's ({identical} byte-identical, largest difference {worst:.1e})")
EOF
echo "== slurm test passed"

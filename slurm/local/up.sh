#!/usr/bin/env bash
# A real single-node SLURM for tests and demos: munged + slurmctld + slurmd on this machine.
#
#   sudo slurm/local/up.sh            # state, config and logs under $REPRO_SLURM_DIR (default /tmp/repro-slurm)
#   export SLURM_CONF=/tmp/repro-slurm/slurm.conf   # only needed when /etc/slurm/slurm.conf belongs to someone else
#   sinfo; .venv/bin/python -m pytest -m slurm -q
#   sudo slurm/local/down.sh
#
# Idempotent: a running cluster is left as it is. Needs root (daemons run as root, munged as `munge`) and, when the
# Debian packages slurmctld slurmd slurm-client munge are missing, apt. No systemd: daemons are started directly and
# stopped by their PID files (down.sh). Why each setting is there:
#   ProctrackType=proctrack/linuxproc, TaskPlugin=task/none   no cgroups in containers
#   AccountingStorageType=accounting_storage/none             no slurmdbd, so `sacct` fails, as on many small clusters;
#                                                             repro.launch.slurm_state falls back to squeue/scontrol
#   AuthInfo=cred_expire=5, sched_interval=2, bf_interval=2   a requeued job restarts in seconds instead of ~120 s
#   KillWait=5                                                a cancelled job dies in ~5 s instead of 30 s
#   MinJobAge=3600                                            finished jobs stay visible to `squeue --states=all`
#   ClusterName fixed; a state dir written under another name is wiped (slurmctld refuses to start otherwise)
set -euo pipefail

DIR="${REPRO_SLURM_DIR:-/tmp/repro-slurm}"
CLUSTER="repro-local"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"
WAIT_S="${REPRO_SLURM_WAIT_S:-30}"

log() { echo "[slurm-up] $*"; }
die() { echo "[slurm-up] error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it starts munged, slurmctld and slurmd); try: sudo $0"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { timeout 5 sinfo -h -N -o %t 2>/dev/null | head -1 || true; }

if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && [ -n "$(node_state)" ]; then
    log "already up ($(node_state)); config $CONF"
    exit 0
fi

# 1. Packages (about 10 s when the apt lists are fresh).
need=()
for bin in slurmctld slurmd sinfo munged; do command -v "$bin" >/dev/null 2>&1 || need+=("$bin"); done
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get; install SLURM and munge by hand"
    log "installing slurmctld slurmd slurm-client munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null && apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    } || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"

# 2. munge: /run/munge owned by munge, munged started as munge. Reused when it already answers.
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running"
else
    [ -s /etc/munge/munge.key ] || {
        log "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    }
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/munged.ours"   # down.sh stops munged only when we started it
    for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munged did not start (see /var/log/munge/munged.log)"
    log "munged started"
fi

# 3. slurm.conf from the node's real hardware (slurmd -C), keeping 10% of the memory for the host.
node_line="$(slurmd -C | head -1)"
node="$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$node_line")"
mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")"
[ -n "$node" ] && [ -n "$mem" ] || die "could not parse 'slurmd -C': $node_line"
mem=$((mem * 9 / 10))
node_line="$(sed "s/RealMemory=[0-9]*/RealMemory=$mem/" <<<"$node_line")"

if [ -f "$DIR/state/clustername" ] && [ "$(cat "$DIR/state/clustername")" != "$CLUSTER" ]; then
    log "state dir belongs to cluster '$(cat "$DIR/state/clustername")'; wiping $DIR/state"
    rm -rf "$DIR/state" && mkdir -p "$DIR/state"
fi

cat >"$CONF" <<EOF
# Written by slurm/local/up.sh; see the comments there. Regenerated at every start.
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=512
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=5
MinJobAge=3600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

# Clients find the config through /etc/slurm/slurm.conf unless that file belongs to someone else.
if [ ! -e /etc/slurm/slurm.conf ] || [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then
    mkdir -p /etc/slurm && ln -sfn "$CONF" /etc/slurm/slurm.conf
    linked=1
else
    linked=0
fi

# 4. Daemons (each leaves its PID file for down.sh). Stale halves of an earlier cluster are stopped first.
for d in slurmd slurmctld; do
    if alive "$DIR/$d.pid"; then kill "$(cat "$DIR/$d.pid")" 2>/dev/null || true; sleep 1; fi
    rm -f "$DIR/$d.pid"
done
slurmctld -f "$CONF"
slurmd -f "$CONF"

t0=$(date +%s)
until [ "$(node_state)" = idle ]; do
    if [ $(( $(date +%s) - t0 )) -ge "$WAIT_S" ]; then
        tail -5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
        die "node not idle after ${WAIT_S}s (state: '$(node_state)'); logs in $DIR/log"
    fi
    sleep 0.5
done
log "up in $(( $(date +%s) - t0 ))s: node $node ($(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line") CPUs, ${mem} MB), partition debug"
if [ "$linked" = 1 ]; then
    log "clients use /etc/slurm/slurm.conf -> $CONF"
else
    log "/etc/slurm/slurm.conf is not ours: export SLURM_CONF=$CONF"
fi
log "try: sinfo; srun hostname; .venv/bin/python -m pytest -m slurm -q; stop with slurm/local/down.sh"

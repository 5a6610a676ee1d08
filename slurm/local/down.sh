#!/usr/bin/env bash
# Stop the local SLURM started by up.sh: cancel its jobs, stop slurmd and slurmctld by their PID files, stop munged
# when up.sh started it, and make sure no job step (slurmstepd) of this cluster is left behind. Idempotent.
#
#   sudo slurm/local/down.sh          # REPRO_SLURM_DIR as for up.sh; REPRO_SLURM_WIPE=1 also deletes the state dir
set -uo pipefail

DIR="${REPRO_SLURM_DIR:-/tmp/repro-slurm}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"

log() { echo "[slurm-down] $*"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Stop one process by PID: TERM, up to 10 s, then KILL.
stop_pid() {
    local pid="$1" name="$2"
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { log "stopped $name ($pid)"; return 0; }; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "killed $name ($pid) after 10 s"
}

# 1. Jobs first: stopping slurmd does not stop running job steps.
if alive "$DIR/slurmctld.pid" && [ -f "$CONF" ]; then
    jobs="$(timeout 5 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,REQUEUED -o %A 2>/dev/null | sort -u)"
    if [ -n "$jobs" ]; then
        log "cancelling jobs: $(tr '\n' ' ' <<<"$jobs")"
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 40); do   # KillWait=5: steps are gone within ~6 s
            [ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

# 2. Daemons, by PID file.
for d in slurmd slurmctld; do
    if [ -f "$DIR/$d.pid" ]; then
        stop_pid "$(cat "$DIR/$d.pid")" "$d"
        rm -f "$DIR/$d.pid"
    fi
done

# 3. Job steps of this cluster that outlived slurmd: slurmstepd keeps its socket in our spool dir.
for pid in $(pgrep -x slurmstepd 2>/dev/null); do
    if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$DIR/spool" || \
       tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$DIR"; then
        stop_pid "$pid" "slurmstepd"
    fi
done

# 4. munged, only when up.sh started it.
if [ -f "$DIR/munged.ours" ]; then
    if [ -f /run/munge/munged.pid ]; then stop_pid "$(cat /run/munge/munged.pid)" munged; fi
    rm -f "$DIR/munged.ours"
fi

if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$CONF" ]; then rm -f /etc/slurm/slurm.conf; fi
if [ "${REPRO_SLURM_WIPE:-0}" = 1 ]; then rm -rf "$DIR"; log "wiped $DIR"; fi
log "down"

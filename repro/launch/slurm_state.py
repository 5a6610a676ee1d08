"""Job state without accounting.

submitit asks ``sacct`` for job states. Many small and test clusters run without slurmdbd
(``AccountingStorageType=accounting_storage/none``), where ``sacct`` exits non-zero; submitit then logs a warning,
reports every job as ``UNKNOWN`` and ``job.result()`` waits forever on a job that died. :class:`SqueueInfoWatcher`
keeps using ``sacct`` while it works and answers from the controller otherwise: ``squeue --states=all`` lists
pending, running and recently finished jobs (for ``MinJobAge`` seconds after they end); a job the controller no
longer knows is reported as :data:`PURGED`, a terminal state, so waiting on it ends with submitit's
``UncompletedJobError`` instead of hanging.

Use :func:`with_state_fallback` on a submitit ``AutoExecutor``/``SlurmExecutor`` before submitting, and
:func:`slurm_job` to rebuild a job handle from a stored job id (``repro status``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import submitit
from submitit.core import core, logger, utils
from submitit.slurm.slurm import SlurmExecutor, SlurmInfoWatcher, SlurmJob

PURGED = "PURGED"
"""State of a job the controller no longer knows (ended more than ``MinJobAge`` ago, or never existed)."""

# States after which a job never runs again by itself (REQUEUED/PREEMPTED jobs may).
TERMINAL = frozenset(
    {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
     "REVOKED", "SPECIAL_EXIT", PURGED}
)
COMMAND_TIMEOUT_S = 30.0
_SQUEUE_FIELDS = ("JobID", "State", "NodeList", "Reason")
_INVALID_JOB = "Invalid job id"

E = TypeVar("E", bound=submitit.Executor)


def base_state(state: str) -> str:
    """``'CANCELLED by 0'`` -> ``'CANCELLED'`` (sacct appends who cancelled)."""
    return state.split()[0].upper() if state.strip() else "UNKNOWN"


def is_terminal(state: str) -> bool:
    return base_state(state) in TERMINAL


def _main_ids(job_ids: Iterable[str]) -> list[str]:
    return sorted({j.split("_")[0] for j in job_ids})


def squeue_states(job_ids: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, dict[str, str]]:
    """States of ``job_ids`` (plain ``"12"`` or array tasks ``"12_3"``) known to the controller, one entry per job
    or array task, with sacct's field names. Jobs the controller does not know are absent.

    Raises ``subprocess.SubprocessError``/``OSError`` when squeue itself fails (controller down, no squeue).
    """
    mains = _main_ids(job_ids)
    if not mains:
        return {}
    # -r: one line per array task, also for pending ones ("12_3" rather than "12_[3-5]").
    cmd = ["squeue", "--states=all", "-r", "-h", "-o", "%i|%T|%N|%r", "-j", ",".join(mains)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        # squeue answers "Invalid job id specified" (rc 1) when it is asked for one job it does not know.
        if _INVALID_JOB in proc.stderr and len(mains) == 1:
            return {}
        raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return parse_squeue(proc.stdout)


def parse_squeue(text: str) -> dict[str, dict[str, str]]:
    info: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != len(_SQUEUE_FIELDS) or not parts[0]:
            continue
        stats = dict(zip(_SQUEUE_FIELDS, parts, strict=True))
        info[stats["JobID"]] = stats
    return info


def scontrol_show_job(job_id: str, timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, str]:
    """All fields of ``scontrol show job`` (``JobState``, ``Restarts``, ``ExitCode``, ``Reason``, ``StdOut`` ...);
    empty when the controller does not know the job. For array tasks pass ``"12_3"``."""
    proc = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if proc.returncode != 0:
        if _INVALID_JOB in proc.stderr:
            return {}
        raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    line = proc.stdout.splitlines()[0] if proc.stdout.strip() else ""
    # Values may contain spaces (Command=, Comment=): a field runs until the next " Key=".
    return {m.group(1): m.group(2) for m in re.finditer(r"(?:^|\s)([A-Za-z][\w/:.]*)=(.*?)(?=\s[A-Za-z][\w/:.]*=|$)",
                                                          line)}


def sacct_available(timeout_s: float = 10.0) -> bool:
    """Whether ``sacct`` answers on this cluster (it does not without slurmdbd)."""
    try:
        return subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, timeout=timeout_s,
                              check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class SqueueInfoWatcher(SlurmInfoWatcher):
    """submitit's watcher with a fallback to ``squeue --states=all`` when ``sacct`` fails.

    Jobs sacct reports are taken from sacct; jobs it fails on or does not list are asked of squeue. Once sacct
    has failed, it is not asked again by this watcher (``sacct_ok`` is ``False``). A registered job that squeue
    does not list (and sacct did not report) is marked :data:`PURGED` (terminal).
    """

    def __init__(self, delay_s: int = 60, use_sacct: bool = True) -> None:
        super().__init__(delay_s=delay_s)
        self.sacct_ok: bool | None = None if use_sacct else False

    def update(self) -> None:
        to_check = self._registered - self._finished
        if not to_check:
            return
        self._num_calls += 1
        info: dict[str, dict[str, str]] = {}
        command = self._make_command() if self.sacct_ok is not False else None
        if command is not None:
            try:
                self._output = subprocess.check_output(command, shell=False, stderr=subprocess.PIPE,
                                                       timeout=COMMAND_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError) as e:
                if self.sacct_ok is None:
                    logger.get_logger().info(f"sacct unavailable ({_short(e)}); job states come from squeue")
                self.sacct_ok = False
            else:
                self.sacct_ok = True
                info = self.read_info(self._output)
        missing = sorted(j for j in to_check if j not in info)
        if missing:
            try:
                found = squeue_states(missing)
            except (OSError, subprocess.SubprocessError) as e:
                logger.get_logger().warning(f"squeue failed ({_short(e)}); job states may be stale")
            else:
                info.update(found)
                for job_id in missing:
                    if job_id not in found:
                        info[job_id] = {"JobID": job_id, "State": PURGED, "NodeList": "", "Reason": ""}
        self._info_dict.update(info)
        self._last_status_check = time.time()
        for job_id in to_check:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)


def _short(e: BaseException) -> str:
    stderr = getattr(e, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    return (stderr or str(e)).strip().splitlines()[-1] if (stderr or str(e)).strip() else type(e).__name__


class FallbackSlurmJob(SlurmJob[core.R]):
    """A submitit ``SlurmJob`` whose state comes from :class:`SqueueInfoWatcher`."""

    watcher = SqueueInfoWatcher(delay_s=60)


class FallbackSlurmExecutor(SlurmExecutor):
    """A submitit ``SlurmExecutor`` returning :class:`FallbackSlurmJob` handles, for single jobs and arrays."""

    job_class = FallbackSlurmJob

    @classmethod
    def name(cls) -> str:
        return "slurm"  # AutoExecutor's "slurm_*" parameters and the job environment key on this name

    def _internal_process_submissions(
        self, delayed_submissions: list[utils.DelayedSubmission]
    ) -> list[core.Job[Any]]:
        jobs = super()._internal_process_submissions(delayed_submissions)
        # Arrays are built as plain SlurmJob inside submitit: re-wrap them so they use our watcher.
        return [j if isinstance(j, FallbackSlurmJob) else FallbackSlurmJob(self.folder, j.job_id, j._tasks)
                for j in jobs]


def with_state_fallback(executor: E) -> E:
    """Make a submitit ``AutoExecutor`` (cluster ``slurm``) or ``SlurmExecutor`` hand out jobs whose state falls back
    to squeue; other executors (``local``, ``debug``) are returned unchanged. Returns the same executor."""
    inner = getattr(executor, "_executor", executor)
    if isinstance(inner, SlurmExecutor) and not isinstance(inner, FallbackSlurmExecutor):
        inner.__class__ = FallbackSlurmExecutor  # adds no state, so switching the class is safe
    return executor


def slurm_job(folder: str | Path, job_id: str, num_tasks: int = 1) -> FallbackSlurmJob[Any]:
    """A handle on an already submitted job (e.g. a job id stored in a run directory)."""
    return FallbackSlurmJob(folder, job_id, tasks=tuple(range(num_tasks)))


def wait_done(job: core.Job[Any], timeout_s: float, poll_s: float = 1.0, settle_s: float = 20.0) -> str:
    """Wait until ``job`` is done (result file written or terminal state), forcing a state check every ``poll_s``,
    and return its state. The result file appears before the job's process exits, so a done job is then given up to
    ``settle_s`` to reach a terminal state in the scheduler. Raises ``TimeoutError`` after ``timeout_s``
    (``job.wait()`` has no timeout)."""
    deadline = time.monotonic() + timeout_s
    while not job.done(force_check=True):
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job.job_id} not done after {timeout_s:.0f}s (state {job.state})")
        time.sleep(poll_s)
    settle = time.monotonic() + settle_s
    state = job.watcher.get_state(job.job_id, mode="force")
    while not is_terminal(state) and time.monotonic() < settle:
        time.sleep(min(poll_s, 0.5))
        state = job.watcher.get_state(job.job_id, mode="force")
    return state


def use_local_cluster_conf() -> Path | None:
    """Point SLURM clients at the local test cluster's config (``$REPRO_SLURM_DIR/slurm.conf``, written by
    ``slurm/local/up.sh``) when neither ``SLURM_CONF`` nor ``/etc/slurm/slurm.conf`` says otherwise.
    Returns the config now in use, if known."""
    if "SLURM_CONF" in os.environ:
        return Path(os.environ["SLURM_CONF"])
    system = Path("/etc/slurm/slurm.conf")
    if system.exists():
        return system
    local = Path(os.environ.get("REPRO_SLURM_DIR", "/tmp/repro-slurm")) / "slurm.conf"
    if local.exists():
        os.environ["SLURM_CONF"] = str(local)  # inherited by sbatch/squeue and by the jobs
        return local
    return None


def _controller_address() -> tuple[str, int] | None:
    """(host, port) of the first SlurmctldHost in the client's slurm.conf, or ``None`` when not found."""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    try:
        text = conf.read_text()
    except OSError:
        return None
    host = re.search(r"^\s*(?:SlurmctldHost|ControlMachine)\s*=\s*([^\s(#]+)(?:\(([^)\s]+)\))?", text, re.M | re.I)
    port = re.search(r"^\s*SlurmctldPort\s*=\s*(\d+)", text, re.M | re.I)
    if host is None:
        return None
    return host.group(2) or host.group(1), int(port.group(1)) if port else 6817


def controller_answers(timeout_s: float = 5.0) -> str | None:
    """``None`` when ``sinfo`` answers (a SLURM controller is reachable), else one line saying why not.

    A closed controller port is detected in milliseconds (sinfo itself retries for ~10 s)."""
    address = _controller_address()
    if address is not None:
        try:
            socket.create_connection(address, timeout=1.0).close()
        except OSError as e:
            return f"no slurmctld at {address[0]}:{address[1]} ({e.strerror or e}); start one with slurm/local/up.sh"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P %a %D %t"], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except FileNotFoundError:
        return "sinfo not found (no SLURM client installed); start one with slurm/local/up.sh"
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within {timeout_s:.0f}s; start a cluster with slurm/local/up.sh"
    if proc.returncode != 0 or not proc.stdout.strip():
        why = (proc.stderr.strip().splitlines() or ["no partitions"])[-1]
        return f"sinfo failed ({why}); start a cluster with slurm/local/up.sh"
    return None

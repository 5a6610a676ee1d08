"""``repro doctor``'s checks, run on a cluster's login node before ``repro submit``: what a job array needs that
its jobs would otherwise find missing hours later, in a queue.

Each check returns one :class:`Check`: ``ok``, ``FAIL`` (with a fix) or ``skipped`` (the tool it needs is not
there, or there is nothing to check). The scheduler is asked with ``sinfo`` and ``sacctmgr`` only; a site
without accounting (``sacctmgr`` fails) skips the account check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from repro.errors import UserError

Status = Literal["ok", "FAIL", "skipped"]
LOCK = Path(__file__).resolve().parents[2] / "requirements" / "lock.txt"
COMMAND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<8} {self.name:<24} {self.detail}" + (f"; fix: {self.fix}" if self.fix else "")


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "no output"


def cluster_profile(load: Callable[[], Any]) -> tuple[Check, Any]:
    """Load (and validate) the cluster profile; the profile, or None when it fails."""
    from repro.launch.cluster import TEMPLATE

    try:
        p = load()
    except UserError as e:
        return Check("cluster profile", "FAIL", str(e), "fix the file, or name another with --cluster-profile"), None
    if p.name == TEMPLATE:
        return Check("cluster profile", "FAIL", f"{p.name} is the template: its partition and account are "
                     "placeholders", f"copy slurm/profiles/{TEMPLATE}.yaml to slurm/profiles/<site>.yaml, fill it "
                     "in and pass --cluster-profile <site>"), p
    where = ", ".join(f"{k} {getattr(p, k)}" for k in ("partition", "account", "qos") if getattr(p, k))
    return Check("cluster profile", "ok", f"{p.name}: {p.nodes} node(s) x {p.gpus_per_node} GPU(s), time limit "
                 f"{p.time / 60:g} h" + (f", {where}" if where else "")), p


def slurm_commands() -> Check:
    """sbatch submits; submitit also wants srun on the submitting host."""
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if missing:
        return Check("sbatch", "FAIL", f"{' and '.join(missing)} not on PATH",
                     "run this on the cluster's login node (or load its SLURM module)")
    return Check("sbatch", "ok", f"{shutil.which('sbatch')}")


def partition(profile: Any) -> Check:
    """The partition exists, has nodes with the GPUs one run asks for, and allows its time limit."""
    from repro.launch.cluster import parse_time_min

    if profile.partition is None:
        return Check("partition", "skipped", "the profile names none (the cluster's default partition)")
    if shutil.which("sinfo") is None:
        return Check("partition", "skipped", "sinfo not on PATH")
    proc = _run(["sinfo", "-h", "-p", profile.partition, "-o", "%P|%D|%G|%l"])
    if proc.returncode != 0:
        return Check("partition", "skipped", f"sinfo failed: {_first_line(proc.stderr)}")
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.count("|") == 3]
    if not rows:
        known = _run(["sinfo", "-h", "-o", "%P"]).stdout.split()
        return Check("partition", "FAIL", f"no partition {profile.partition!r}" + (
            f" (sinfo knows: {', '.join(p.rstrip('*') for p in known)})" if known else ""),
            "set partition in the cluster profile (or --set partition=NAME)")
    nodes = sum(int(r[1]) for r in rows if r[1].isdigit())
    gpus = max((_gres_gpus(r[2]) for r in rows), default=0)
    limit = rows[0][3]
    detail = f"{profile.partition}: {nodes} node(s), gres {rows[0][2]}, time limit {limit}"
    if profile.gpus_per_node > gpus:
        return Check("partition", "FAIL", f"{detail}: its nodes have {gpus} GPU(s), a run asks for "
                     f"{profile.gpus_per_node} per node", "set gpus_per_node (or another partition)")
    if limit not in ("infinite", "UNLIMITED"):
        try:
            if profile.time > parse_time_min(limit):
                return Check("partition", "FAIL", f"{detail}: shorter than the profile's {profile.time} min",
                             f"set time to at most {limit} in the cluster profile")
        except ValueError:
            pass  # a format sinfo may print that SLURM's job flags do not take: nothing to compare
    return Check("partition", "ok", detail)


def _gres_gpus(gres: str) -> int:
    """``gpu:a100:8(S:0-1)`` / ``gpu:8`` -> 8; no GPUs -> 0 (several gres: comma-separated)."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total = max(total, int(parts[-1]))
    return total


def account(profile: Any, user: str | None = None) -> Check:
    """The account (and qos) are among this user's associations."""
    if profile.account is None and profile.qos is None:
        return Check("account", "skipped", "the profile names no account or qos")
    if shutil.which("sacctmgr") is None:
        return Check("account", "skipped", "sacctmgr not on PATH")
    user = user or os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    proc = _run(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}", "format=account,qos"])
    if proc.returncode != 0:
        return Check("account", "skipped", f"sacctmgr failed (no accounting?): {_first_line(proc.stderr)}")
    assocs = [line.split("|") for line in proc.stdout.splitlines() if "|" in line]
    accounts = sorted({a for a, _ in assocs})
    if profile.account is not None and profile.account not in accounts:
        return Check("account", "FAIL", f"{profile.account!r} is not an account of user {user!r} "
                     f"(sacctmgr: {', '.join(accounts) or 'none'})", "set account in the cluster profile")
    qos = {q for a, qs in assocs if profile.account in (None, a) for q in qs.split(",") if q}
    if profile.qos is not None and qos and profile.qos not in qos:
        return Check("account", "FAIL", f"qos {profile.qos!r} is not allowed for account {profile.account!r} "
                     f"(sacctmgr: {', '.join(sorted(qos))})", "set qos in the cluster profile (or remove it)")
    return Check("account", "ok", ", ".join(f"{k} {getattr(profile, k)}" for k in ("account", "qos")
                                            if getattr(profile, k)))


def data(configs: Iterable[dict[str, Any]]) -> list[Check]:
    """Per data set, where the runs' task finds it (the job inherits this shell's ``$REPRO_DATA...``)."""
    from repro.tasks import get_task

    found: dict[str, list[dict[str, Any]]] = {}
    for config in configs:
        found.setdefault(str(config.get("dataset")), []).append(config)
    checks = []
    for name, group in found.items():
        task = get_task(str(group[0].get("task")))
        if task is None:
            checks.append(Check(f"data {name}", "skipped", f"no runner for task {group[0].get('task')!r}"))
            continue
        try:
            root = task.data(group[0])
        except UserError as e:
            checks.append(Check(f"data {name}", "FAIL", f"{len(group)} run(s): {e}",
                                "jobs inherit this shell's environment: export the variable here, naming a "
                                "directory the compute nodes see"))
            continue
        checks.append(Check(f"data {name}", "ok", f"{len(group)} run(s): " + (str(root) if root else "bundled")))
    return checks


def runs_dir(path: Path) -> Check:
    """The runs directory can be written (where it does not exist yet: its nearest existing parent)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return Check("runs dir", "FAIL", f"{target} is not a directory", "pass --runs DIR")
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".repro-doctor-"):
            pass
    except OSError as e:
        return Check("runs dir", "FAIL", f"cannot write in {target} ({e.strerror})",
                     "pass --runs DIR on a shared file system you can write")
    return Check("runs dir", "ok", f"{path.absolute()} " + ("(writable)" if target == path else
                                                             f"(to be created in {target.absolute()})"))


def packages(lock: Path = LOCK) -> Check:
    """Every package the lock pins for this Python and platform is installed at its version."""
    from importlib import metadata

    from packaging.markers import Marker
    from packaging.utils import canonicalize_name

    if not lock.is_file():
        return Check("packages", "skipped", f"no lock file {lock}")
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if not line or line[0] in " #-" or "==" not in line:
            continue
        spec, _, marker = line.rstrip(" \\").partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = spec.strip().partition("==")
        pins[canonicalize_name(name)] = version.strip()
    installed: dict[str, str] = {}
    for d in metadata.distributions():  # the first on sys.path wins, as for imports (vendored copies come later)
        installed.setdefault(canonicalize_name(d.metadata["Name"]), d.version)
    wrong = [f"{n} {installed.get(n, 'missing')} (lock {v})" for n, v in sorted(pins.items())
             if installed.get(n) != v]
    if wrong:
        return Check("packages", "FAIL", f"{len(wrong)} of {len(pins)} differ from {lock.name}: "
                     + ", ".join(wrong[:4]) + (", ..." if len(wrong) > 4 else ""), "make setup")
    import platform

    return Check("packages", "ok", f"the {len(pins)} pins of {lock.name} (Python {platform.python_version()})")

"""Cluster profiles: where and with what resources runs are submitted.

A profile is a small YAML file in ``slurm/profiles/`` (``local.yaml`` for the test cluster of ``slurm/local/up.sh``,
``example-a100.yaml`` as a template) that says what a site needs (partition, account, qos, constraint) and what
one run gets (nodes, GPUs per node, CPUs and memory per GPU, time limit). :func:`load_cluster_profile` validates it
into a :class:`ClusterProfile`, with command-line overrides, and :func:`executor_parameters` /
:func:`make_executor` turn it into submitit parameters. Multi-GPU runs get one task per GPU
(``tasks_per_node = gpus_per_node``) so the trainer's DDP reads its rank from the SLURM environment.
:func:`submission_script` is the sbatch script such an executor submits, from submitit's own code.

A GPU profile's nodes x gpus_per_node is what a run gets unless the run states its own GPU count (its task's
``gpus``, else its manifest profile's, :func:`run_gpus`): :func:`shape` is the profile with that many GPUs on
nodes of ``gpus_per_node`` GPUs, and :func:`resources` submits with it. The training configs hold the global
batch, split over however many processes there are, so the count changes neither a run's identity nor its batch.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from repro.errors import UserError, read_yaml_mapping

PROFILES_DIR = Path(__file__).resolve().parents[2] / "slurm" / "profiles"
TEMPLATE = "example-a100"
"""The profile to copy for a GPU site; its partition and account are placeholders."""
_MEM_UNITS = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def parse_time_min(value: int | float | str) -> int:
    """SLURM time formats (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``) or minutes
    -> whole minutes (rounded up)."""
    if isinstance(value, bool):
        raise ValueError("expected a time like '2-00:00:00', 'HH:MM:SS' or minutes")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("time must be positive")
        return math.ceil(value)
    m = re.fullmatch(r"\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*", str(value))
    if not m:
        raise ValueError(f"expected a SLURM time like '2-00:00:00', 'HH:MM:SS' or minutes, got {value!r}")
    days, a, b, c = (int(x) if x is not None else None for x in m.groups())
    assert a is not None
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = a * 3600 + (b or 0) * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:  # MM
        seconds = a * 60
    if seconds <= 0:
        raise ValueError("time must be positive")
    return math.ceil(seconds / 60)


def parse_mem_gb(value: int | float | str) -> float:
    """``'64G'``, ``'500M'``, ``'1T'`` (SLURM units, powers of 1024) or a number of GB -> GB."""
    if isinstance(value, bool):
        raise ValueError("expected memory like '64G' or '500M'")
    if isinstance(value, int | float):
        gb = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])?B?\s*", str(value), flags=re.IGNORECASE)
        if not m:
            raise ValueError(f"expected memory like '64G' or '500M', got {value!r}")
        gb = float(m.group(1)) * _MEM_UNITS[(m.group(2) or "G").upper()]
    if gb <= 0:
        raise ValueError("memory must be positive")
    return gb


class ClusterProfile(BaseModel):
    """What one run asks of the scheduler. Memory in GB after validation, time in minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", description="the file name without .yaml; filled in by the loader")
    description: str | None = None
    executor: Literal["slurm", "local"] = Field(
        default="slurm", description="submitit executor: 'slurm', or 'local' (subprocesses on this machine)")
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    nodes: int = Field(default=1, ge=1)
    gpus_per_node: int = Field(default=0, ge=0)
    cpus_per_gpu: int | None = Field(default=None, ge=1)
    mem_per_gpu: float | None = Field(default=None, description="GB ('64G', '500M' or a number of GB)")
    cpus_per_task: int | None = Field(default=None, ge=1, description="CPU-only profiles (gpus_per_node: 0)")
    mem: float | None = Field(default=None, description="GB per node, CPU-only profiles")
    time: int = Field(description="time limit per job: '2-00:00:00', 'HH:MM:SS' or minutes")
    signal_delay_s: int = Field(default=120, ge=0, description="USR2 this long before the time limit")
    max_num_timeout: int = Field(default=20, ge=0, description="requeues after time limits (submitit)")
    array_parallelism: int | None = Field(default=None, ge=1)
    setup: list[str] = Field(default_factory=list, description="shell lines before srun (module load ...)")
    additional_parameters: dict[str, str | int] = Field(default_factory=dict, description="extra #SBATCH flags")
    speed_vs_3090: float = Field(default=1.0, gt=0, description="training speed of one of these GPUs relative "
                                 "to the paper's NVIDIA 3090 (divides the GPU-hour estimates of a dry run)")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> int:
        return parse_time_min(v)

    @field_validator("mem_per_gpu", "mem", mode="before")
    @classmethod
    def _mem(cls, v: Any) -> float | None:
        return None if v is None else parse_mem_gb(v)

    @model_validator(mode="after")
    def _resources(self) -> ClusterProfile:
        if self.gpus_per_node > 0:
            missing = [f for f in ("cpus_per_gpu", "mem_per_gpu") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a GPU profile (gpus_per_node: {self.gpus_per_node}) needs {' and '.join(missing)}")
            extra = [f for f in ("cpus_per_task", "mem") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"a GPU profile sets resources per GPU: use cpus_per_gpu/mem_per_gpu, not "
                                 f"{' and '.join(extra)}")
        else:
            extra = [f for f in ("cpus_per_gpu", "mem_per_gpu") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"{' and '.join(extra)} need gpus_per_node > 0; a CPU profile uses "
                                 "cpus_per_task and mem")
            if self.nodes > 1:
                raise ValueError("multi-node runs need GPUs (one task per GPU); set gpus_per_node")
        return self

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    def with_overrides(self, source: str = "command line", **overrides: Any) -> ClusterProfile:
        """A copy with some fields replaced (``None`` values are ignored), validated like a file."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        data = {**self.model_dump(exclude_defaults=True), "time": self.time, **given}
        return _validate(data, f"{source} overrides of cluster profile {self.name!r}")


def _format_error(where: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = f"unknown field; expected one of: {', '.join(f for f in ClusterProfile.model_fields if f != 'name')}"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) or got is None or first["type"] == "extra_forbidden" else \
        f" (got {got!r})"
    more = f" [+{err.error_count() - 1} more]" if err.error_count() > 1 else ""
    return f"{where}: {loc or 'profile'}: {msg}{shown}{more}"


def _validate(data: dict[str, Any], where: str) -> ClusterProfile:
    try:
        return ClusterProfile.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_error(where, err)) from None


def profile_path(name_or_path: str | Path) -> Path:
    """``'local'`` -> ``slurm/profiles/local.yaml``; a path (with ``/`` or ``.yaml``) is returned as is."""
    s = str(name_or_path)
    if "/" in s or s.endswith((".yaml", ".yml")):
        return Path(s)
    return PROFILES_DIR / f"{s}.yaml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_cluster_profile(name_or_path: str | Path, **overrides: Any) -> ClusterProfile:
    """Read and validate a cluster profile (by name or path), then apply overrides; every problem is one
    ``UserError`` line naming the file, the field and what is expected."""
    path = profile_path(name_or_path)
    data = read_yaml_mapping(path, "cluster profile", f"available: {', '.join(available_profiles()) or 'none'} "
                             f"(in {PROFILES_DIR})")
    if "name" in data:
        raise UserError(f"{path}: name: the profile's name is its file name ({path.stem!r}); remove the field")
    profile = _validate({**data, "name": path.stem}, str(path))
    return profile.with_overrides(**overrides)


def executor_parameters(profile: ClusterProfile, job_name: str | None = None) -> dict[str, Any]:
    """submitit ``AutoExecutor.update_parameters`` keywords for one run of ``profile``."""
    gpu = profile.gpus_per_node > 0
    params: dict[str, Any] = {
        "timeout_min": profile.time,
        "nodes": profile.nodes,
        "tasks_per_node": profile.gpus_per_node if gpu else 1,  # one DDP process per GPU
        "cpus_per_task": profile.cpus_per_gpu if gpu else (profile.cpus_per_task or 1),
    }
    if gpu:
        params["gpus_per_node"] = profile.gpus_per_node
        assert profile.mem_per_gpu is not None
        params["mem_gb"] = profile.mem_per_gpu * profile.gpus_per_node
    elif profile.mem is not None:
        params["mem_gb"] = profile.mem
    if job_name:
        params["name"] = job_name
    if profile.executor == "slurm":
        for key in ("partition", "account", "qos", "constraint", "exclude", "array_parallelism"):
            value = getattr(profile, key)
            if value is not None:
                params[f"slurm_{key}"] = value
        params["slurm_signal_delay_s"] = profile.signal_delay_s
        if profile.setup:
            params["slurm_setup"] = list(profile.setup)
        if profile.additional_parameters:
            params["slurm_additional_parameters"] = dict(profile.additional_parameters)
    return params


RESOURCE_PARAMETERS = ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "mem_gb")
"""The keywords of :func:`executor_parameters` that :func:`resources` switches: one run's shape."""


def run_gpus(profile: ClusterProfile, *stated: int | None) -> int | None:
    """How many GPUs a run gets on ``profile``: the first count in ``stated`` that is given (the run's task's, then
    its manifest profile's ``gpus``), else the profile's nodes x gpus_per_node; ``None`` on a CPU profile."""
    if profile.gpus_per_node == 0:
        return None
    return next((n for n in stated if n is not None), profile.gpus)


def shape(profile: ClusterProfile, gpus: int | None) -> ClusterProfile:
    """``profile`` with ``gpus`` GPUs per run: ``min(gpus, gpus_per_node)`` GPUs on each of
    ``ceil(gpus / gpus_per_node)`` nodes; CPUs and memory stay per GPU. ``None`` or a CPU profile: ``profile``
    itself. A count that fills no whole number of nodes (12 GPUs on 8-GPU nodes) is a one-line ``UserError``."""
    per_node = profile.gpus_per_node
    if gpus is None or per_node == 0 or gpus == profile.gpus:
        return profile
    if gpus < 1 or (gpus > per_node and gpus % per_node):
        raise UserError(f"cluster profile {profile.name!r}: a run on {gpus} GPUs does not fill whole nodes of "
                        f"{per_node} GPUs (gpus_per_node); use a multiple of {per_node} or at most {per_node}")
    return profile.model_copy(update={"nodes": math.ceil(gpus / per_node), "gpus_per_node": min(gpus, per_node)})


def describe_shape(profile: ClusterProfile) -> str:
    return f"{profile.nodes} node(s) x {profile.gpus_per_node} GPU(s)"


def make_executor(profile: ClusterProfile, folder: str | Path, job_name: str | None = None, *,
                  plan_only: bool = False) -> Any:
    """A submitit ``AutoExecutor`` for ``profile`` whose SLURM jobs report state without accounting
    (:mod:`repro.launch.slurm_state`). ``folder`` holds submitit's scripts, pickles and logs. ``plan_only``: also
    where ``srun`` is missing (submitit refuses to build a SLURM executor there), for :func:`submission_script`."""
    import submitit
    from submitit.slurm.slurm import SlurmExecutor

    from repro.launch.slurm_state import with_state_fallback

    kwargs: dict[str, Any] = {}
    if profile.executor == "slurm":
        kwargs["slurm_max_num_timeout"] = profile.max_num_timeout
    try:
        if plan_only and profile.executor == "slurm":
            with mock.patch.object(SlurmExecutor, "affinity", classmethod(lambda cls: 2)):  # its srun check
                executor = submitit.AutoExecutor(folder=folder, cluster="slurm", **kwargs)
        else:
            executor = submitit.AutoExecutor(folder=folder, cluster=profile.executor, **kwargs)
    except RuntimeError as e:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
        raise UserError(f"cluster profile {profile.name!r}: cannot use executor {profile.executor!r} here ({e}); "
                        "start the local test cluster with slurm/local/up.sh or pick another profile") from None
    executor.update_parameters(**executor_parameters(profile, job_name))
    return with_state_fallback(executor)


def _slurm(executor: Any) -> Any:
    from submitit.slurm.slurm import SlurmExecutor

    inner = getattr(executor, "_executor", executor)
    if not isinstance(inner, SlurmExecutor):
        raise UserError(f"executor {type(inner).__name__} submits no sbatch script")
    return inner


def submission_script(executor: Any, jobs: int = 1) -> str:
    """The sbatch script ``executor`` (a SLURM one from :func:`make_executor`) writes when ``jobs`` runs are
    submitted together, without submitting: submitit's own text (``SlurmExecutor._make_submission_file_text``)
    with its parameters, command and, for more than one job, the job-array line submitit adds
    (``_internal_process_submissions`` sets ``map_count``). Log paths keep their ``%A_%a`` / ``%j`` patterns."""
    inner = _slurm(executor)
    planned = copy.copy(inner)
    planned.parameters = {**inner.parameters, **({"map_count": jobs} if jobs > 1 else {})}
    return str(planned._make_submission_file_text(inner._submitit_command_str, uid="plan"))


@contextmanager
def dependency(executor: Any, spec: str) -> Iterator[None]:
    """Submissions inside wait for ``spec`` (``sbatch --dependency``, e.g. ``afterok:123``); the parameter is
    removed afterwards (submitit's ``update_parameters`` ignores ``None``, so it cannot unset it)."""
    executor.update_parameters(slurm_dependency=spec)
    try:
        yield
    finally:
        _slurm(executor).parameters.pop("dependency", None)


def _resource_parameters(profile: ClusterProfile) -> dict[str, Any]:
    params = executor_parameters(profile)
    return {k: params[k] for k in RESOURCE_PARAMETERS if k in params}


@contextmanager
def resources(executor: Any, profile: ClusterProfile, gpus: int | None) -> Iterator[ClusterProfile]:
    """Submissions inside ask for the resources of a run on ``gpus`` GPUs (:func:`shape` of ``profile``, the
    profile ``executor`` was made from): its :data:`RESOURCE_PARAMETERS`, as :func:`executor_parameters` computes
    them; ``profile``'s are put back afterwards. Yields the shaped profile. Not inside ``executor.batch()``
    (submitit refuses parameter changes there): an array has one shape."""
    shaped = shape(profile, gpus)
    if shaped is profile:
        yield profile
        return
    executor.update_parameters(**_resource_parameters(shaped))
    try:
        yield shaped
    finally:
        executor.update_parameters(**_resource_parameters(profile))


def dump_cluster_profile(profile: ClusterProfile) -> str:
    """YAML text that :func:`load_cluster_profile` reads back to an equal profile (memory in GB, time in minutes)."""
    data = profile.model_dump(exclude={"name"}, exclude_defaults=True)
    data["time"] = profile.time
    return yaml.safe_dump(data, sort_keys=False)


def sbatch_script(profile: ClusterProfile, folder: str | Path, job_name: str | None = None, jobs: int = 1) -> str:
    """The sbatch script of ``jobs`` runs of ``profile`` submitted together (:func:`submission_script`); needs no
    cluster."""
    if profile.executor != "slurm":
        raise UserError(f"cluster profile {profile.name!r}: executor {profile.executor!r} has no sbatch script")
    return submission_script(make_executor(profile, folder, job_name, plan_only=True), jobs)

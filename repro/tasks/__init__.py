"""Tasks: what a manifest run's ``task`` names, and the one place ``repro run``, the SLURM job and ``repro status``
look it up (timm-style: each module registers its tasks when imported, names map to objects, never to
"module:function" strings).

A task is one file in this package (``repro/tasks/<name>.py``) that builds a :class:`Task` and passes it to
:func:`register`, and one base config ``experiments/base/<name>.yaml`` (the task's recipe; the resolver layers a
run on it, ``repro.launch.resolve``). A :class:`Task` holds:

* ``name`` -- the manifest's ``task:`` value and the base config's file name;
* ``check(config) -> str`` -- why this task cannot run a resolved config, ``""`` if it can. Called before
  anything is started or submitted, so an unrunnable run is named up front (``no-run  <run>: <why>``);
* ``run(config, run_dir)`` -- train (or resume) the resolved config in ``run_dir``: resume from whatever the
  directory holds, and finish by writing ``summary.json`` with a finite headline metric (``top1``; ``ap_box`` or
  ``miou`` for detection / segmentation: ``repro.launch.rundir.HEADLINE_METRICS``); the run is finished only then.
  A :class:`~repro.errors.UserError` is bad input or set-up (never retried); any other exception is a failure;
* ``upstream`` -- the tasks a run of this task may start from (``init_from: <run key>`` in the manifest; empty:
  no ``init_from``). The resolved config then carries ``init_from`` = the upstream run id (part of the run's
  identity); ``run`` finds the upstream's directory beside its own, ``run_dir.parent / config["init_from"]``,
  and starts from it -- the engine does when its config's ``init_from`` is that directory
  (:func:`repro.train.finetune.init_from_run`: newest checkpoint, new head, resampled position embeddings;
  :func:`repro.train.finetune.upstream_weights` alone for another model). The launchers run (``repro run``) or
  submit (``repro submit``: SLURM ``afterok``) the upstream first; ``run`` still refuses an unfinished one;
* ``requires_upstream`` -- whether a run of this task must name one (a fine-tuning recipe has nothing to start
  from without it);
* ``data(config) -> Path | None`` -- where the run's data is, found without reading it (``repro doctor`` asks on a
  login node); a one-line ``UserError`` when it is not there. Default: the root of the config's ``dataset``
  (:func:`repro.data.datasets.locate`);
* ``gpus`` -- how many GPUs a run of this task trains on, on a GPU cluster, where its recipe fixes it (the
  shipped MMDetection / MMSegmentation configs: 8 GPUs); ``None``: the manifest profile's ``gpus``, else the
  cluster profile's nodes x gpus_per_node (:func:`repro.launch.cluster.run_gpus`). A resource, not part of the
  run's identity: the configs hold the global batch, which the trainers split over the processes there are;
* ``pauses`` -- whether ``run`` honours ``pause_at_fraction`` in its config (stop with a checkpoint once that share
  of the compute is done, raising :class:`repro.launch.signals.Paused`), as the engine does: the local executor
  then trains two runs whose times a table compares in turns (:mod:`repro.launch.local`).

Adding a task: write ``repro/tasks/<name>.py`` with ``register(Task(...))`` (one module may register several, e.g.
a pre-training and its fine-tuning: ``in22k.py``), add the module to :data:`BUILTIN`, add
``experiments/base/<name>.yaml`` and the name to ``repro.launch.manifest.Task``. A classification task on the
engine needs no code of its own: ``Task(name, run=in1k.run, check=in1k.check, ...)`` (``transfer.py``).

A site (or a test) adds tasks without editing the package: ``REPRO_TASK_MODULES=mod1,mod2`` names modules imported
after the built-in ones; one that registers a built-in name replaces that task (``tests/toy_plugin.py`` puts the
toy tasks of ``tests/toy_task.py`` in place of ``in1k`` and ``transfer``). An environment variable reaches
cluster jobs, where a monkeypatch would not.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.errors import UserError

Config = dict[str, Any]

# the modules of this package that register the built-in tasks
BUILTIN = ("in1k", "in22k", "transfer", "mae", "coco", "ade20k")


def dataset_root(config: Config) -> Path | None:
    """The root of the run's ``dataset`` (its ``data_root`` when it names one)."""
    from repro.data.datasets import locate

    return locate(str(config["dataset"]), config.get("data_root"))


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[Config, Path], Any]
    check: Callable[[Config], str]
    upstream: frozenset[str] = field(default_factory=frozenset)
    requires_upstream: bool = False
    data: Callable[[Config], Path | None] = dataset_root
    gpus: int | None = None
    pauses: bool = False

    def __post_init__(self) -> None:
        if self.gpus is not None and self.gpus < 1:
            raise ValueError(f"task {self.name!r}: gpus must be at least 1, got {self.gpus}")


REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add ``task`` under its name (a later registration of the same name replaces the earlier one)."""
    REGISTRY[task.name] = task
    return task


def _import_site_modules() -> None:
    """The modules ``REPRO_TASK_MODULES`` names (each imported once: Python caches modules)."""
    for name in filter(None, (m.strip() for m in os.environ.get("REPRO_TASK_MODULES", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UserError(f"REPRO_TASK_MODULES: cannot import {name!r} ({err})") from None


def get_task(name: str) -> Task | None:
    """The registered task ``name`` (built-in and ``REPRO_TASK_MODULES`` ones), or None."""
    _import_site_modules()
    return REGISTRY.get(name)


def task_for(config: Config) -> tuple[Task | None, str]:
    """The task that can run a resolved config, or None and why not (one line)."""
    name = str(config.get("task"))
    task = get_task(name)
    if task is None:
        return None, f"no runner for task {name!r} yet"
    problem = task.check(config)
    return (None, problem) if problem else (task, "")


for _name in BUILTIN:  # last: the task modules import Task and register from this one
    importlib.import_module(f"repro.tasks.{_name}")

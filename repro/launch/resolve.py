"""Manifest cells -> runs: resolve each row's RunSpecs into a complete, hashable training configuration.

The resolved configuration is composed in one fixed order, each layer overriding the previous one:

1. the base config of the run's task (``experiments/base/<task>.yaml``; in1k: Table 24), whatever the table:
   the IN-1K pre-training of a COCO row is the same run as Table 7's,
2. the base config's per-model exceptions (App. A.1: drop path, EMA, AMP, LAMB, ...),
3. the run itself (model, method, schedule, epochs, final size, dataset) and its ``overrides``,
4. the profile (``full`` / ``smoke``: data set, final size, epoch scale, batch, ...) and its ``overrides``,
   except for the settings the run overrides itself: those are what the row varies, and a profile that
   replaced them would train (and name) another run than the one asked for. A run's paper data set that the
   profile replaces (``stand_ins``: IN-22K, CIFAR, COCO... on the CPU proxy) becomes the stand-in, its size and
   its epoch scale where it has one.

A run that starts from another run of its row (``init_from: <run key>``) carries that run's id as
``init_from`` (seed k of the run starts from seed k of its upstream): the link is part of its identity (a
fine-tuning of another pre-training is another run), and the runs of a row are resolved (and listed) upstream
first.

A run's identity is a hash of that configuration alone -- not of the table or row that asked for it -- so the
same baseline requested by Tables 7, 8 and 11 is trained once, in one run directory ``runs/<run_id>``.

Seeds are a dimension of a run: each spec resolves to one run per seed (``seed`` in its config; the profile's
``seeds``, or ``seeds=`` given to :func:`resolve`). The seeds of a spec share everything but their seed, so their
run ids share a prefix, the *cell* (``<model>-<method>-<hash of the config without its seed>``), and differ by
``-s<seed>``: the aggregator pools a cell's seeds into mean +- std (n).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from repro.core.curriculum import REFERENCE_SIZE
from repro.errors import UserError
from repro.launch.manifest import BaseConfig, Manifest, Profile, RunSpec, load_base, schedule_setting
from repro.methods import label as method_label
from repro.methods.frequency_studies import ALL_SETTINGS as STUDY_SETTINGS
from repro.methods.frequency_studies import curriculum as study_curriculum


@dataclass(frozen=True)
class ResolvedRun:
    table: int
    row: str
    key: str  # the run's name within its row (e.g. "baseline", "etpp")
    profile: str
    spec: RunSpec
    config: dict[str, Any]
    run_id: str
    evaluation: dict[str, Any]  # eval_* overrides: how to evaluate the trained run (not part of its identity)
    cell: str = ""  # the run id without its seed: what the run's seeds have in common
    gpus: int | None = None  # the manifest profile's GPU count per run: a resource, not part of the identity

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def upstream(self) -> str | None:
        """The run id of the run this one starts from (``init_from``), if any."""
        return self.config.get("init_from")

    @property
    def label(self) -> str:
        """How the launchers name the run in their output: ``row / key [run id]``."""
        return f"{self.row} / {self.key} [{self.run_id}]"

    @property
    def group(self) -> str:
        """The wandb group of a run this table launches (``RunDir.prepare``)."""
        return f"table{self.table:02d}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


EVAL_PREFIX = "eval_"  # overrides that change how a trained run is evaluated, not the training itself


def _training_key(spec: RunSpec) -> str:
    """What a run trains: the spec without its evaluation overrides (cells differing only there share it)."""
    data = spec.model_dump(exclude={"note"})
    data["overrides"] = {k: v for k, v in spec.overrides.items() if not _is_evaluation(k)}
    return json.dumps(data, sort_keys=True, default=str)


def _is_evaluation(key: str) -> bool:
    from repro.train.config import TrainConfig

    return key.startswith(EVAL_PREFIX) and key not in TrainConfig.model_fields  # eval_every_epochs trains


def same_cost_epochs(schedule: str | dict[str, Any], baseline_epochs: float, final_size: int, adapt: str) -> float:
    """Epochs of ``schedule`` whose training compute equals ``baseline_epochs`` standard epochs (Table 9: "our
    method is configured to have the same training cost as the baselines"): equivalent epochs grow linearly
    with the schedule's epochs, so one probe suffices (ET, Table 5: 300 real epochs cost 195.9 -> 459, rounded to
    whole epochs as a training run has them)."""
    from repro.core.curriculum import build

    probe = build(schedule, epochs=baseline_epochs, final_size=final_size, adapt=adapt).equivalent_epochs
    return float(round(baseline_epochs * baseline_epochs / probe))


def resolve_config(spec: RunSpec, profile_name: str, manifest: Manifest, base: BaseConfig,
                   upstream: str | None = None) -> dict[str, Any]:
    """The configuration of one run: ``base`` is its task's (:func:`load_base` of ``spec.task``), ``upstream`` the
    run id of the run its ``init_from`` names."""
    if profile_name not in manifest.profiles:
        known = ", ".join(manifest.profiles) or "none"
        raise UserError(f"table {manifest.table} has no profile {profile_name!r}; profiles: {known}")
    return run_config(spec, profile_name, manifest.profiles[profile_name], base, upstream)


def run_config(spec: RunSpec, profile_name: str, profile: Profile, base: BaseConfig,
               upstream: str | None = None) -> dict[str, Any]:
    """The configuration of one run of ``spec`` under ``profile`` (named ``profile_name``), whichever manifest
    asks for it: :func:`resolve_config` of a table's run, and ``repro train``'s defaults on the Fashion-MNIST proxy
    (the ``proxy`` profile applied to a run of the in1k base)."""
    config: dict[str, Any] = dict(base.config)
    model_defaults = dict(base.models.get(spec.model, {}))
    timm_name = model_defaults.pop("timm", None)
    # a model beyond the Table 7 zoo names the zoo model of its family whose tiny proxy stands in for it
    proxy_of = model_defaults.pop("proxy", None)
    config.update(model_defaults)
    final_size = profile.final_size
    if spec.final_size is not None:  # a run at another final size (Table 10): scaled like every B in a proxy
        final_size = spec.final_size if profile.adapt == "table10" else round(
            spec.final_size * profile.final_size / REFERENCE_SIZE)
    dataset = spec.dataset or profile.dataset
    stand_in = profile.stand_ins.get(dataset)
    proxied = bool(proxy_of) and profile.model_variant == "proxy"
    config.update(
        task=spec.task,
        model=proxy_of if proxied else spec.model,
        timm_model=base.models.get(proxy_of, {}).get("timm") if proxied else timm_name,
        method=spec.method,
        schedule=None if spec.schedule is None else schedule_setting(spec.schedule),
        final_size=final_size,
        dataset=stand_in.dataset if stand_in else dataset,
    )
    epochs = spec.epochs if spec.epochs is not None else config.get("epochs")
    run_overrides = {k: v for k, v in spec.overrides.items() if not _is_evaluation(k)}
    config.update(run_overrides)
    search = config.get("search")
    if isinstance(search, dict):  # a search on the run's own model / data is on the profile's (a proxy's) ones
        own = {"model": spec.model, "dataset": spec.dataset or base.config.get("dataset", "imagenet-1k")}
        config["search"] = {k: v for k, v in search.items() if k not in own or v != own[k]}
    study = {k: config.pop(k) for k in STUDY_SETTINGS if k in config}
    if study:  # Sec. 4's studies: their settings are a curriculum, stated over the paper's epochs
        config["schedule"] = study_curriculum(study, float(epochs or 300), method_label(spec.method))
    if config.get("same_cost_as_baseline") and epochs is not None:
        epochs = same_cost_epochs(config["schedule"] or "baseline", float(epochs), final_size, profile.adapt)
    scale = stand_in.epoch_scale if stand_in and stand_in.epoch_scale else profile.epoch_scale
    config.update(
        profile=profile_name,
        epochs=None if epochs is None else epochs * scale,
        adapt=profile.adapt,
        model_variant=profile.model_variant,
        max_train_images=(stand_in and stand_in.max_train_images) or profile.max_train_images,
    )
    if spec.final_size is not None and profile.adapt == "linear":  # a proxy of a Table 10 run: its B follow
        config["paper_final_size"] = spec.final_size  # the paper's rule at that size, scaled like the final size
    for key in ("warmup_epochs", "budget_epochs"):  # parts of the schedule: they scale with it
        if config.get(key) is not None:
            config[key] = config[key] * scale
    profile_settings = {"batch_size": profile.global_batch} if profile.global_batch is not None else {}
    profile_settings.update(profile.overrides)
    if stand_in:
        profile_settings.update(stand_in.overrides)
    config.update({k: v for k, v in profile_settings.items() if k not in run_overrides})
    if upstream is not None:
        config["init_from"] = upstream
    return config


def _cell_id(spec: RunSpec, config: dict[str, Any]) -> str:
    """``<model>-<method>-<hash>`` (the run id without its seed), prefixed with the task for the tasks other than
    the default (IN-1K) one, so that a pre-training and its fine-tunings are told apart in ``runs/``. The model is
    the one trained (a proxy may stand in for several, which then share one run)."""
    task = "" if spec.task == RunSpec.model_fields["task"].default else f"{_slug(spec.task)}-"
    return f"{task}{_slug(config['model'])}-{_slug(method_label(spec.method).replace('+', 'p'))}-{config_hash(config)}"


def resolve(manifest: Manifest, profile: str, only: list[str] | None = None,
            seeds: int | None = None) -> list[ResolvedRun]:
    """Every run of the manifest's rows (or of the rows named in ``only``) under ``profile``, once per seed
    (``seeds``, default the profile's)."""
    if seeds is not None and seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    if only:
        for label in only:
            manifest.row(label)  # one-line error for an unknown row
    bases: dict[str, BaseConfig] = {}
    runs = []
    snapshots: dict[str, list[float]] = {}  # a training run -> every epoch its cells evaluate (eval_epoch)
    for row in manifest.rows:
        for spec in row.runs.values():
            if "eval_epoch" in spec.overrides:
                kept = snapshots.setdefault(_training_key(spec), [])
                kept[:] = sorted({*kept, float(spec.overrides["eval_epoch"])})
    for row in manifest.rows:
        if only and row.label not in only:
            continue
        ids: dict[str, str] = {}
        for key in row.link_order():
            spec = row.runs[key]
            if spec.task not in bases:
                bases[spec.task] = load_base(spec.task)
            upstream = ids[spec.init_from] if spec.init_from is not None else None
            config = resolve_config(spec, profile, manifest, bases[spec.task], upstream)
            kept = snapshots.get(_training_key(spec))
            if kept:  # the epochs some cell evaluates (Table 1): the run keeps its weights there
                config["snapshot_epochs"] = [e * manifest.profiles[profile].epoch_scale for e in kept]
            cell = _cell_id(spec, config)  # identity: the upstream's cell, whatever the seed
            ids[key] = cell
            evaluation = {k: v for k, v in spec.overrides.items() if _is_evaluation(k)}
            for seed in range(seeds or manifest.profiles[profile].seeds):
                seeded = config | {"seed": seed}
                if upstream is not None:  # seed k starts from seed k of its upstream
                    seeded["init_from"] = f"{upstream}-s{seed}"
                runs.append(ResolvedRun(manifest.table, row.label, key, profile, spec, seeded, f"{cell}-s{seed}",
                                        evaluation, cell, manifest.profiles[profile].gpus))
    return runs

"""Imported through ``REPRO_TASK_MODULES=toy_plugin``: registers the toy task in place of ``in1k``."""

from toy_task import TASK

from repro.tasks import register

register(TASK)

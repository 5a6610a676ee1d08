"""Imported through ``REPRO_TASK_MODULES=toy_plugin``: registers the toy tasks in place of ``in1k`` and
``transfer``."""

from toy_task import TASK, TRANSFER

from repro.tasks import register

register(TASK)
register(TRANSFER)

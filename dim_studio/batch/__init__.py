"""Folder export: matte every photo of a folder with its trimap (or mask).

This is the library behind ``dim-studio batch`` and the GUI's batch dialog
(both through ``workflows.batch``). It never prints and never parses
arguments: callers get ``BatchEvent`` callbacks and a ``BatchReport``.

- ``pairing`` (a core module, shared with ``evaluation``): which trimap or
  mask goes with which photo. Files without an image extension (``notes.txt``)
  are ignored; a file *with* an image extension that cannot be decoded is a
  failure, not silently skipped, and so is a link loop, a pipe named .png or a
  sub-folder that cannot be listed (``pairing.list_pairs``): one bad entry
  never stops the run.
- ``batch.planning``: ``plan_batch`` lists and pairs the photos, names their
  outputs and decides what to do with each (``PlanStatus``): resume checks,
  ``--retry-failed`` from the previous report (a damaged one is set aside),
  outputs that would land on an input (the whole plan is refused).
- ``batch.running``: ``run_batch`` mattes the plan's photos, emitting
  ``BatchEvent``s (``BatchEventKind``), and writes the JSON report of what
  was done, skipped and failed (``FileStatus``) and how the run ended
  (``RunStatus``).

The statuses and event kinds are ``str`` enums: they compare equal to, print
as and serialise to their plain values ("done", "file-started", ...), so the
report file reads the same as plain strings would.
"""

from __future__ import annotations

from ..pairing import ALPHA_SUFFIXES, MASK_SUFFIXES, TRIMAP_SUFFIXES, Pair, find_pairs
from .planning import (
    OUTPUT_KINDS, REPORT_NAME, BatchItem, BatchPlan, FileStatus, PlanStatus, output_paths,
    plan_batch, read_report,
)
from .running import BatchEvent, BatchEventKind, BatchReport, FileResult, RunStatus, run_batch

__all__ = [
    "ALPHA_SUFFIXES", "MASK_SUFFIXES", "OUTPUT_KINDS", "REPORT_NAME", "TRIMAP_SUFFIXES",
    "BatchEvent", "BatchEventKind", "BatchItem", "BatchPlan", "BatchReport", "FileResult",
    "FileStatus", "Pair", "PlanStatus", "RunStatus",
    "find_pairs", "output_paths", "plan_batch", "read_report", "run_batch",
]

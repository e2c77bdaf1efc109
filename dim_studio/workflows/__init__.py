"""The jobs both front ends run, without Qt (docs/ARCHITECTURE.md).

The command line and the desktop application call the same functions here:
choosing and configuring an engine, the weights status, the preview, export
and batch jobs, and installing weights. A job takes a ``JobContext`` (cancel
flag, progress, intermediate results, engine cache) and a frozen request, and
returns a frozen result; the GUI runs it in a worker lane, the CLI calls it
directly with ``JobContext.standalone()``.
"""

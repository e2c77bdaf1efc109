"""``dim-studio --self-test``: check this installation without a screen."""

from __future__ import annotations

import sys


def run() -> int:
    """Print one line per check; exit 1 when anything the program needs is missing or broken."""
    from ..workflows.selftest import Check, passed, run_self_test

    def qt_check() -> Check:
        from ..gui.selftest import check_qt

        return check_qt()

    def report(check: Check) -> None:
        print(check.line(), flush=True)

    checks = run_self_test(qt_check, report)
    if passed(checks):
        print("dim-studio: self-test passed")
        return 0
    failed = ", ".join(c.name for c in checks if not (c.ok or c.optional))
    print(f"dim-studio: error: self-test failed: {failed} (see the FAIL lines above)", file=sys.stderr)
    return 1

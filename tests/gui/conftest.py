"""GUI tests run headless: the offscreen platform must be chosen before Qt loads."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

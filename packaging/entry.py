"""Entry script of the frozen build (PyInstaller): the same as ``dim-studio``."""

from dim_studio.cli import main

raise SystemExit(main())

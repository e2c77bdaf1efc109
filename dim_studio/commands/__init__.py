"""Subcommands of the ``dim-studio`` command line, one module each."""

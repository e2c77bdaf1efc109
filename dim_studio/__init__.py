"""DIM Studio: soft alpha mattes with Deep Image Matting and classical solvers."""

__version__ = "0.1.0"

"""Training: settings (one declaration per flag), the loop, the update (eager or a CUDA graph), run
folders, checkpoints and their 2018 reader, ranks under torchrun, the per-epoch plots.

The entry points are ``svgvp.training.loop.main`` (train_svg_lp.py, train_svg_fp.py) and
``svgvp.training.loop.train`` (a ``TrainConfig`` from ``svgvp.training.settings.parse_args``).
"""

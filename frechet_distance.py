"""Fréchet distance (and KID) on the trained SVG encoder: this file keeps the 2018 README's import and
command working from the repository root (and from examples/), over ``svgvp.metrics``.

    from frechet_distance import frechet_distance
    d = frechet_distance(images1, images2)          # the shipped SM-MNIST SVG-LP encoder

    python frechet_distance.py                      # the basic example; --help for the command line
"""
import sys

from svgvp.metrics.frechet import (  # noqa: F401
    FrechetDistanceCalculator,
    InputError,
    clear_model_cache,
    frechet_distance,
    frechet_distance_from_features,
    frechet_distance_from_statistics,
    kernel_distance_from_features,
    load_statistics,
    main,
    save_statistics,
)

if __name__ == "__main__":
    sys.exit(main())

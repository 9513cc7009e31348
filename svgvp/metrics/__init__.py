"""Metrics: frame SSIM/PSNR, LPIPS, the best-of-N protocols, and feature distances (Fréchet distance and
KID on the SVG encoder, FVD and KVD on the Kinetics-400 I3D), all batched in torch.

    from svgvp.metrics import frechet_distance, fvd, lpips
"""
from svgvp.metrics.feature_distances import (
                                             InputError,
                                             frechet_distance_from_features,
                                             frechet_distance_from_statistics,
                                             kernel_distance_from_features,
                                             load_statistics,
                                             save_statistics,
)
from svgvp.metrics.frames import psnr, ssim
from svgvp.metrics.frechet import FrechetDistanceCalculator, frechet_distance
from svgvp.metrics.frechet_video import FVDCalculator, fvd, kvd
from svgvp.metrics.perceptual import LPIPSCalculator, lpips
from svgvp.pretrained import clear_model_cache

__all__ = ["FVDCalculator", "FrechetDistanceCalculator", "InputError", "LPIPSCalculator", "clear_model_cache",
           "frechet_distance", "frechet_distance_from_features", "frechet_distance_from_statistics", "fvd",
           "kernel_distance_from_features", "kvd", "load_statistics", "lpips", "psnr", "save_statistics", "ssim"]

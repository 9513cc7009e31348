"""svgvp: Stochastic Video Generation with a Learned Prior (Denton & Fergus, ICML 2018) on current
PyTorch, and the metrics of the field.

    svgvp.models     the SVG networks (backbones, LSTMs, SVG-LP/FP), the I3D of FVD
    svgvp.data       SM-MNIST, BAIR, KTH; converters; files carried by packages (MNIST, I3D weights)
    svgvp.training   settings, the training loop and its update, run folders, checkpoints, ranks
    svgvp.metrics    SSIM/PSNR, best-of-N protocols, Fréchet distance and KID, FVD
    svgvp.generate   sampling and evaluation of a checkpoint (generate_svg_lp.py)

The user's entry points stay at the repository root: train_svg_lp.py, train_svg_fp.py,
generate_svg_lp.py, frechet_distance.py and example_frechet_distance.py.
"""
__version__ = "0.2.0"

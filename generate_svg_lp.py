"""Sample from an SVG checkpoint and evaluate best-of-N SSIM/PSNR (and FVD, the encoder's Fréchet
distance): the 2018 script's name and flags, over ``svgvp.generate``. See README, "Evaluation"."""
try:
    from svgvp.generate import main
except KeyboardInterrupt:  # Ctrl-C while PyTorch is still being imported: nothing was written
    raise SystemExit(130) from None

if __name__ == "__main__":
    main()

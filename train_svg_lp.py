"""Train SVG-LP (learned prior). Flags and defaults are those of the 2018 script; see README."""
try:
    from svgvp.training.loop import main
except KeyboardInterrupt:  # Ctrl-C while PyTorch is still being imported: nothing was written
    raise SystemExit(130) from None

if __name__ == "__main__":
    main(learned_prior=True)

"""Train SVG-FP (fixed N(0, I) prior). Flags and defaults are those of the 2018 script; see README."""
from training import main

if __name__ == "__main__":
    main(learned_prior=False)

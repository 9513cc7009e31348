"""DCGAN encoder and decoder for 128x128 frames (the 2018 ``dcgan_128``: one more block each)."""
import torch.nn as nn

from svgvp.models.layers import (
    SkipDecoder,
    SkipEncoder,
    StepSequential,
    dcgan_conv,
    dcgan_upconv,
    latent_block,
    latent_upconv,
)

NF = 64


class Encoder(SkipEncoder):
    blocks = ("c1", "c2", "c3", "c4", "c5", "c6")

    def __init__(self, dim, nc=1):
        super().__init__(dim)
        self.c1 = dcgan_conv(nc, NF)            # 128 -> 64
        self.c2 = dcgan_conv(NF, NF * 2)        # 64 -> 32
        self.c3 = dcgan_conv(NF * 2, NF * 4)    # 32 -> 16
        self.c4 = dcgan_conv(NF * 4, NF * 8)    # 16 -> 8
        self.c5 = dcgan_conv(NF * 8, NF * 8)    # 8 -> 4
        self.c6 = latent_block(NF * 8, dim)     # 4 -> 1


class Decoder(SkipDecoder):
    blocks = ("upc1", "upc2", "upc3", "upc4", "upc5", "upc6")

    def __init__(self, dim, nc=1):
        super().__init__(dim)
        self.upc1 = latent_upconv(dim, NF * 8)        # 1 -> 4
        self.upc2 = dcgan_upconv(NF * 8 * 2, NF * 8)  # 4 -> 8
        self.upc3 = dcgan_upconv(NF * 8 * 2, NF * 4)  # 8 -> 16
        self.upc4 = dcgan_upconv(NF * 4 * 2, NF * 2)  # 16 -> 32
        self.upc5 = dcgan_upconv(NF * 2 * 2, NF)      # 32 -> 64
        self.upc6 = StepSequential(nn.ConvTranspose2d(NF * 2, nc, 4, 2, 1), nn.Sigmoid())  # 64 -> 128

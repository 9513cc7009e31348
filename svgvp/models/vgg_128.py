"""VGG-style encoder and decoder for 128x128 frames (the 2018 ``vgg_128``: one more block each)."""
import torch.nn as nn

from svgvp.models.layers import SkipDecoder, SkipEncoder, StepSequential, latent_block, latent_upconv, vgg_layer


class Encoder(SkipEncoder):
    blocks = ("c1", "c2", "c3", "c4", "c5", "c6")
    pool = True

    def __init__(self, dim, nc=1):
        super().__init__(dim)
        self.c1 = StepSequential(vgg_layer(nc, 64), vgg_layer(64, 64))                            # 128
        self.c2 = StepSequential(vgg_layer(64, 128), vgg_layer(128, 128))                         # 64
        self.c3 = StepSequential(vgg_layer(128, 256), vgg_layer(256, 256), vgg_layer(256, 256))   # 32
        self.c4 = StepSequential(vgg_layer(256, 512), vgg_layer(512, 512), vgg_layer(512, 512))   # 16
        self.c5 = StepSequential(vgg_layer(512, 512), vgg_layer(512, 512), vgg_layer(512, 512))   # 8
        self.c6 = latent_block(512, dim)                                                          # 4 -> 1


class Decoder(SkipDecoder):
    blocks = ("upc1", "upc2", "upc3", "upc4", "upc5", "upc6")
    upsample = True

    def __init__(self, dim, nc=1):
        super().__init__(dim)
        self.upc1 = latent_upconv(dim, 512)                                                          # 1 -> 4
        self.upc2 = StepSequential(vgg_layer(512 * 2, 512), vgg_layer(512, 512), vgg_layer(512, 512))  # 8
        self.upc3 = StepSequential(vgg_layer(512 * 2, 512), vgg_layer(512, 512), vgg_layer(512, 256))  # 16
        self.upc4 = StepSequential(vgg_layer(256 * 2, 256), vgg_layer(256, 256), vgg_layer(256, 128))  # 32
        self.upc5 = StepSequential(vgg_layer(128 * 2, 128), vgg_layer(128, 64))                       # 64
        self.upc6 = StepSequential(vgg_layer(64 * 2, 64), nn.ConvTranspose2d(64, nc, 3, 1, 1), nn.Sigmoid())  # 128

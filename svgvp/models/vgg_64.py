"""VGG-style encoder and decoder for 64x64 frames (the 2018 ``vgg_64``)."""
import torch.nn as nn

from svgvp.models.layers import SkipDecoder, SkipEncoder, StepSequential, latent_block, latent_upconv, vgg_layer


class Encoder(SkipEncoder):
    blocks = ("c1", "c2", "c3", "c4", "c5")
    pool = True  # 2x2 max-pool before every block after the first

    def __init__(self, dim, nc=1):
        super().__init__(dim)
        self.c1 = StepSequential(vgg_layer(nc, 64), vgg_layer(64, 64))                            # 64
        self.c2 = StepSequential(vgg_layer(64, 128), vgg_layer(128, 128))                         # 32
        self.c3 = StepSequential(vgg_layer(128, 256), vgg_layer(256, 256), vgg_layer(256, 256))   # 16
        self.c4 = StepSequential(vgg_layer(256, 512), vgg_layer(512, 512), vgg_layer(512, 512))   # 8
        self.c5 = latent_block(512, dim)                                                          # 4 -> 1


class Decoder(SkipDecoder):
    blocks = ("upc1", "upc2", "upc3", "upc4", "upc5")
    upsample = True  # nearest 2x before every block after the first

    def __init__(self, dim, nc=1):
        super().__init__(dim)
        self.upc1 = latent_upconv(dim, 512)                                                          # 1 -> 4
        self.upc2 = StepSequential(vgg_layer(512 * 2, 512), vgg_layer(512, 512), vgg_layer(512, 256))  # 8
        self.upc3 = StepSequential(vgg_layer(256 * 2, 256), vgg_layer(256, 256), vgg_layer(256, 128))  # 16
        self.upc4 = StepSequential(vgg_layer(128 * 2, 128), vgg_layer(128, 64))                       # 32
        self.upc5 = StepSequential(vgg_layer(64 * 2, 64), nn.ConvTranspose2d(64, nc, 3, 1, 1), nn.Sigmoid())  # 64

"""SVG models: backbones by (model, image width), LSTMs and the SVG model itself."""
from svgvp.models import dcgan_64, dcgan_128, vgg_64, vgg_128

# (model, image_width) -> (Encoder class, Decoder class)
BACKBONES = {
    ("dcgan", 64): (dcgan_64.Encoder, dcgan_64.Decoder),
    ("dcgan", 128): (dcgan_128.Encoder, dcgan_128.Decoder),
    ("vgg", 64): (vgg_64.Encoder, vgg_64.Decoder),
    ("vgg", 128): (vgg_128.Encoder, vgg_128.Decoder),
}

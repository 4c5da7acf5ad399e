"""Train the VGG16-style face network (the original emotion_model.py). Run with --help.

ImageNet weights cannot be downloaded here: pass ``--imagenet-weights PATH`` (a local
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``) to fine-tune Keras' VGG16, otherwise a
VGG-style network is trained from scratch at 48x48.
"""
import argparse
import sys
from pathlib import Path

from training.face import add_arguments, build_vgg, build_vgg_imagenet, train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser, name="face_vgg", width=0.5, epochs=80, lr=1e-3)
    parser.add_argument("--imagenet-weights", type=Path, default=None, help="local VGG16 no-top ImageNet weights (.h5)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.imagenet_weights:
        if not args.imagenet_weights.exists():
            parser.error(f"--imagenet-weights {args.imagenet_weights} does not exist")
        train(args, lambda n, w: build_vgg_imagenet(args.imagenet_weights, n)[0], "vgg16-imagenet")
    else:
        train(args, build_vgg, "vgg-scratch")


if __name__ == "__main__":
    main()

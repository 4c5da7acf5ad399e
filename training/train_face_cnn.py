"""Train the compact face CNN (the original facetrain.py). Run with --help."""
import argparse
import sys

from training.face import add_arguments, build_cnn, train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser, name="face_cnn", width=0.5, epochs=80, lr=2e-3)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    train(args, build_cnn, "cnn")


if __name__ == "__main__":
    main()

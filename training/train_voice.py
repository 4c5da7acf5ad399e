"""Train a voice-emotion model on RAVDESS, split by actor, and write it with its model card.

Stage 1 trains on actors 1-12 and validates on 13-16 (epochs/recipe chosen there, temperature
fitted there); stage 2 retrains on 1-16; actors 17-20 are scored once, through the serving code,
and as 48 kHz WAV / MP3 / M4A. Checkpoints every epoch in training/runs/<name>/; --resume.

  python -m training.train_voice --arch mlp            # the MFCC baseline
  python -m training.train_voice --arch cnn --serve    # the log-mel CNN, served
"""
import argparse
import sys

from training.voice import add_arguments
from training.voice_folds import train


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return train(args)


if __name__ == "__main__":
    main()

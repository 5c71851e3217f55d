"""Write a trained model without one hidden layer, or with narrower hidden layers: the
start of a cheaper student.

Usage::

    .venv/bin/python scripts/drop_hidden_layer.py SRC.safetensors --layer 3 --out OUT.safetensors
    .venv/bin/python scripts/drop_hidden_layer.py SRC.safetensors --width 48 --out OUT.safetensors

:func:`halohand.training.shrink.drop_hidden_layer` copies every other weight (the config's
``hidden`` one entry shorter); :func:`~halohand.training.shrink.narrow_hidden` keeps each
part's ``--width`` most important units (``hidden`` all ``--width``). The file is an
``init_weights`` for ``halohand train`` with that ``hidden``.
"""

from __future__ import annotations

import argparse

from halohand.fields.io import load_any_model, save_model
from halohand.training.shrink import drop_hidden_layer, narrow_hidden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    cut = parser.add_mutually_exclusive_group(required=True)
    cut.add_argument("--layer", type=int, help="hidden layer to remove")
    cut.add_argument("--width", type=int, help="units to keep in every hidden layer")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    source = load_any_model(args.source)
    if args.layer is not None:
        student = drop_hidden_layer(source, args.layer)
        save_model(args.out, student, {"dropped_hidden_layer_of": args.source})
    else:
        student = narrow_hidden(source, args.width)
        save_model(args.out, student, {"narrowed_from": args.source})
    print(f"wrote {args.out}: hidden {student.config.hidden}")


if __name__ == "__main__":
    main()

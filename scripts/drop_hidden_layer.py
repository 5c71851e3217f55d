"""Write a trained model without one hidden layer: the start of a shallower student.

Usage::

    .venv/bin/python scripts/drop_hidden_layer.py SOURCE.safetensors --layer 3 --out OUT.safetensors

:func:`halohand.training.shrink.drop_hidden_layer` copies every other weight; the file is
an ``init_weights`` for ``halohand train`` with the config's ``hidden`` one entry shorter.
"""

from __future__ import annotations

import argparse

from halohand.fields.io import load_any_model, save_model
from halohand.training.shrink import drop_hidden_layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("--layer", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    student = drop_hidden_layer(load_any_model(args.source), args.layer)
    save_model(args.out, student, {"dropped_hidden_layer_of": args.source})
    print(f"wrote {args.out}: hidden {student.config.hidden}")


if __name__ == "__main__":
    main()

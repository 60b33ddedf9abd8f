"""``circuitnb`` command line: train, data, run, book.

    circuitnb train --profile quick --dataset both
    circuitnb data --profile quick --dataset celeba -p celeba_root /data/celeba
    circuitnb run book/01_data_and_model.ipynb -p timesteps "[50, 500]"
    circuitnb book --profile quick

User mistakes (bad parameters, missing data) end with one line on stderr and
exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from circuitnb.core import config as config_mod
from circuitnb.core.errors import UserError


def _parse_value(text: str):
    """'[50, 500]' -> list, '3' -> int, 'True' -> bool; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _overrides(pairs) -> dict:
    return {name: _parse_value(value) for name, value in (pairs or [])}


def _load(args) -> config_mod.Config:
    return config_mod.load(args.profile, **_overrides(args.param))


def cmd_train(args) -> None:
    from circuitnb.modeling.train import load_or_train
    cfg = _load(args)
    for ds in (("synthetic", "celeba") if args.dataset == "both" else (args.dataset,)):
        model = load_or_train(cfg, ds)
        m = model.meta
        print(f"{ds}: source={m['source']} parameters={m['n_parameters']:,} steps={m['steps']} "
              f"train_seconds={m['train_seconds']:.0f} final_loss(mean of last 50)="
              f"{sum(m['losses'][-50:]) / len(m['losses'][-50:]):.4f} "
              f"{'cache hit' if model.from_cache else 'trained'} -> {Path(cfg.cache_path) / 'models' / m['key']}")


def cmd_data(args) -> None:
    from circuitnb import data
    cfg = _load(args)
    if args.dataset == "synthetic":
        faces = data.synthetic_faces(cfg)
        print(f"synthetic: {len(faces)} images of {cfg.data.image_size}px, seed {cfg.run.seed}")
        for col in faces.attributes.columns.drop("skin_tone"):
            shares = faces.attributes[col].value_counts(normalize=True).round(3).to_dict()
            print(f"  {col}: {shares}")
        print("  part coverage (% of pixels): " + ", ".join(
            f"{p} {100 * faces.mask(p).mean():.1f}" for p in data.PARTS))
    else:
        faces = data.natural_faces(cfg)
        print(f"{faces.source}: {len(faces)} images of {cfg.data.image_size}px"
              + (f"; {len(faces.attributes)} with attribute rows" if faces.attributes is not None else ""))
        if faces.notice:
            print(f"  NOTICE: {faces.notice}")
        print(f"  skipped unreadable files: {len(faces.skipped)}" + (f" ({', '.join(faces.skipped)})" if faces.skipped else ""))
    if args.preview:
        from circuitnb.viz.plotting import image_grid
        fig = image_grid(faces.images[:32], title=f"{args.dataset} ({cfg.profile})")
        fig.savefig(args.preview, dpi=120, bbox_inches="tight")
        print(f"  preview written to {args.preview}")


def cmd_run(args) -> None:
    from circuitnb.publish.book import run_notebook
    path = Path(args.notebook)
    if not path.exists():
        raise UserError(f"notebook {str(path)!r} does not exist")
    out = run_notebook(path, _overrides(args.param), output=args.output)
    print(f"executed {path} -> {out}")


def cmd_book(args) -> None:
    from circuitnb.publish.book import build_book
    html = build_book(args.profile, _overrides(args.param), root=Path(args.root))
    print(f"book built: {html}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="circuitnb", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    param_help = ("override a config field, e.g. -p timesteps '[50, 500]' -p celeba_root /data/celeba; "
                  "names: " + ", ".join(sorted(config_mod.override_names())))

    def common(sp, with_profile=True):
        if with_profile:
            sp.add_argument("--profile", default="quick", help=f"one of {sorted(config_mod.PROFILES)}")
        sp.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help=param_help)

    sp = sub.add_parser("train", help="train (or load cached) models")
    common(sp)
    sp.add_argument("--dataset", default="both", choices=["synthetic", "celeba", "both"])
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("data", help="statistics (and a preview image) of a dataset")
    common(sp)
    sp.add_argument("--dataset", default="synthetic", choices=["synthetic", "celeba"])
    sp.add_argument("--preview", help="write a PNG grid of the first 32 images here")
    sp.set_defaults(func=cmd_data)

    sp = sub.add_parser("run", help="execute one notebook with papermill")
    sp.add_argument("notebook")
    sp.add_argument("-o", "--output", help="executed notebook path (default _build/executed/<name>)")
    common(sp, with_profile=False)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("book", help="execute every notebook, then build the HTML book")
    common(sp)
    sp.add_argument("--root", default=".", help="project root holding _config.yml and _toc.yml")
    sp.set_defaults(func=cmd_book)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:
        print(f"circuitnb {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"circuitnb {args.command}: interrupted (training resumes from its last checkpoint)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``circuitnb`` command line: train, data, run, book, cache.

    circuitnb train --profile quick --dataset both
    circuitnb data --profile quick --dataset celeba -p celeba_root /data/celeba
    circuitnb run book/01_data_and_model.ipynb -p timesteps "[50, 500]"
    circuitnb run book/40_sae_data_models.ipynb -p steps 200        # a Part IV notebook: sae.steps
    circuitnb book --profile quick -p vae.image_size 64             # Part II's notebooks and models
    circuitnb cache ls            # entries, sizes, settings, status;  `cache verify [--fix]`

User mistakes (bad parameters, files or folders) end with one line on stderr
and exit status 2, never a traceback (``--debug`` shows one). Warnings are one
line each, and so are the package's log lines at INFO and above (e.g. a cache
entry another process is writing), which only the command line shows.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

from circuitnb.core import config as config_mod
from circuitnb.core.errors import UserError


def _parse_value(text: str):
    """'[50, 500]' -> list, '3' -> int, 'True' -> bool; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _overrides(pairs, profile_allowed: bool = False) -> dict:
    params = {name: _parse_value(value) for name, value in (pairs or [])}
    if "profile" in params and not profile_allowed:
        raise UserError(f"'-p profile {params['profile']}': the profile is chosen with --profile "
                        f"(one of {sorted(config_mod.PROFILES)}), not with -p")
    return params


def _load(args) -> config_mod.Config:
    return config_mod.load(args.profile, **_overrides(args.param))


def cmd_train(args) -> None:
    from circuitnb import data
    from circuitnb.modeling.train import load_or_train
    cfg = _load(args)
    datasets = ("synthetic", "celeba") if args.dataset == "both" else (args.dataset,)
    config_mod.check_cache_dir(cfg)
    # every dataset is read (and checked) before the first training; the user's CelebA folder first, so a bad
    # one fails before the synthetic draw is written to the cache
    for ds in sorted(datasets, key=lambda d: d != "celeba"):
        data.images(cfg, ds)
    from circuitnb.modeling.precision import describe
    print(describe(cfg.train.precision, cfg.device), file=sys.stderr, flush=True)
    for ds in datasets:
        model = load_or_train(cfg, ds)
        m = model.meta
        print(f"{ds}: source={m['source']} parameters={m['n_parameters']:,} steps={m['steps']} "
              f"train_seconds={m['train_seconds']:.0f} final_loss(mean of last 50)="
              f"{sum(m['losses'][-50:]) / len(m['losses'][-50:]):.4f} "
              f"{'cache hit' if model.from_cache else 'trained'} -> {Path(cfg.cache_path) / 'models' / m['key']}")


def cmd_data(args) -> None:
    from circuitnb import data
    cfg = _load(args)
    if args.preview:
        _check_preview(args.preview)
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
        print(f"  skipped unreadable files: {len(faces.skipped)}"
              + (f" ({', '.join(faces.skipped)})" if faces.skipped else ""))
    if args.preview:
        from circuitnb.viz.plotting import image_grid
        fig = image_grid(faces.images[:32], title=f"{args.dataset} ({cfg.profile})")
        fig.savefig(args.preview, dpi=120, bbox_inches="tight")
        print(f"  preview written to {args.preview}")


def _check_preview(path: str) -> None:
    import matplotlib.pyplot as plt

    from circuitnb.core.machine import check_writable_file
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise UserError(f"--preview {path!r}: unknown image format {suffix!r}; use one of {sorted(formats)}")
    check_writable_file(Path(path), "--preview")


def cmd_run(args) -> None:
    from circuitnb.publish.book import run_notebook
    notebook = Path(args.notebook)
    if notebook.suffix == ".md" and notebook.with_suffix(".ipynb").is_file():   # a chapter's MyST text: its pair
        notebook = notebook.with_suffix(".ipynb")
    out = run_notebook(notebook, _overrides(args.param, profile_allowed=True), output=args.output)
    print(f"executed {args.notebook} -> {out}")


def cmd_book(args) -> None:
    params = _overrides(args.param)
    if params.get("model_dir"):                  # a model of your own: Part I on it, nothing trained
        from circuitnb.publish.yours import build_your_book
        html = build_your_book(args.profile, params, root=Path(args.root))
    else:
        from circuitnb.publish.book import build_book
        html = build_book(args.profile, params, root=Path(args.root))
    print(f"book built: {html}")


def _existing_cache(cfg: config_mod.Config) -> Path:
    """The cache folder ``cache ls`` / ``cache verify`` read; a UserError naming where it came from when it is
    not an existing folder (an empty listing would read as "nothing damaged")."""
    root = cfg.cache_path
    origin = ("parameter 'cache_dir'" if cfg.run.cache_dir else
              "$CIRCUITNB_CACHE" if os.environ.get("CIRCUITNB_CACHE") else "the default cache folder")
    if root.is_dir():
        return root
    what = "is a file, not a folder" if root.exists() else "does not exist (nothing has been cached there)"
    raise UserError(f"{origin} = {str(root)!r} {what}; give the folder that train and book write to")


def cmd_cache(args) -> int:
    from circuitnb.core import inventory
    root = _existing_cache(_load(args))
    entries = inventory.scan(root)
    if args.action == "ls":
        for e in entries:
            print(f"{e.status:8} {e.kind:10} {e.size / 2**20:9.2f} MiB  {e.path.relative_to(root)}  "
                  f"{inventory.summary(e.settings)}")
        print(f"{len(entries)} entries in {root}, {sum(e.size for e in entries) / 2**20:.1f} MiB")
        return 0
    damaged = [e for e in entries if e.status == "damaged"]
    for e in damaged:
        if args.fix:
            inventory.remove(e)
        print(f"{'removed' if args.fix else 'damaged'}: {e.path}: {e.problem}")
    busy = sum(e.in_use for e in entries)
    print(f"{len(entries) - len(damaged) - busy} intact, {len(damaged)} damaged"
          + (" (removed)" if args.fix and damaged else "") + (f", {busy} in use (not checked)" if busy else "")
          + f" in {root}")
    return 1 if damaged and not args.fix else 0


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are user errors: one line on stderr naming the argument and what it accepts,
    exit status 2, no usage dump (``--help`` shows the usage). Subcommand parsers are of this class too
    (``add_subparsers`` makes its parsers with the class of the parser it is called on)."""

    def error(self, message: str):
        hint = self._accepted(message)
        self.exit(2, f"{self.prog}: error: {message}{'; ' + hint if hint else ''}\n")

    def parse_known_args(self, args=None, namespace=None):
        ns, extra = super().parse_known_args(args, namespace)
        command = self._commands().get(getattr(ns, "command", None))
        if extra and command is not None:     # argparse blames the top-level parser: name the subcommand's options
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return ns, extra

    def _commands(self) -> dict:
        return next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})

    def _accepted(self, message: str) -> str:
        """What the argument an argparse message names accepts, when the message does not already say it."""
        if "choose from" in message:
            return ""
        if message.startswith("unrecognized arguments"):
            return "this command accepts " + ", ".join(_usage(a) for a in self._actions if a.option_strings)
        for action in self._actions:
            name = argparse._get_action_name(action)
            if name and (message.startswith(f"argument {name}:") or message.endswith(f"required: {name}")):
                if action.choices:
                    return f"{name} is one of {', '.join(map(str, action.choices))}"
                what = (action.help or "").split(";")[0]          # -p's help goes on to list every name
                return f"give {_usage(action)}" + (f" ({what})" if what else "")
        return ""


def _usage(action: argparse.Action) -> str:
    """``-p NAME VALUE``, ``--profile PROFILE``, ``--debug``, ``notebook``: how one argument is written."""
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return action.option_strings[0]
    metavar = action.metavar or action.dest.upper()
    return " ".join([action.option_strings[0], *(metavar if isinstance(metavar, tuple) else [metavar])])


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="circuitnb", description=__doc__.split("\n\n")[0])
    debug_help = "show the traceback of a user error instead of one line"
    p.add_argument("--debug", action="store_true", help=debug_help)
    sub = p.add_subparsers(dest="command", required=True)
    param_help = ("override a config field, e.g. -p timesteps '[50, 500]' -p celeba_root /data/celeba; Part I's "
                  "fields by their names, the other parts' as PART.NAME (-p vae.image_size 32; for one notebook of "
                  "that part, its bare name); names: " + ", ".join(sorted(config_mod.override_names())))

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
    sp.add_argument("notebook", help="the notebook to execute, e.g. book/01_data_and_model.ipynb")
    sp.add_argument("-o", "--output", help="executed notebook path (default _build/executed/<name>)")
    common(sp, with_profile=False)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("book", help="train or load the models, execute every notebook, build the HTML book")
    common(sp)
    sp.add_argument("--root", default=".", help="project root holding _config.yml and _toc.yml")
    sp.set_defaults(func=cmd_book)

    sp = sub.add_parser("cache", help="list the cache's entries, or verify every file against its manifest")
    sp.add_argument("action", choices=["ls", "verify"], help="ls: entries, size, settings, status; "
                    "verify: exit 0 when all are intact, 1 naming each damaged entry")
    sp.add_argument("--fix", action="store_true", help="with verify: remove the damaged entries")
    common(sp)
    sp.set_defaults(func=cmd_cache)
    for sp in sub.choices.values():     # --debug after the command too (default SUPPRESS keeps the top one)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"circuitnb: warning: {message}", file=sys.stderr if file is None else file, flush=True)


@contextlib.contextmanager
def _log_to_stderr():
    """The ``circuitnb`` loggers' INFO lines on stderr, one line each, for as long as the command runs.

    The library only logs (at INFO); it is this handler that shows the lines in a terminal. A notebook
    has none, and INFO is below what Python shows unconfigured, so they never reach its cell outputs.
    """
    logger = logging.getLogger("circuitnb")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("circuitnb: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(), _log_to_stderr():   # both restored for the caller afterwards
            warnings.showwarning = _one_line_warning
            return args.func(args) or 0
    except UserError as err:
        if args.debug:
            raise
        print(f"circuitnb {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"circuitnb {args.command}: interrupted (training resumes from its last checkpoint)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

import os
import subprocess
import sys
from pathlib import Path

import pytest

from circuitnb.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_commands():
    out = subprocess.run([Path(sys.executable).parent / "circuitnb", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("train", "data", "run", "book", "cache"):
        assert cmd in out.stdout


def test_user_error_is_one_line(capsys, cache):
    assert main(["train", "--profile", "smoke", "-p", "image_sise", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "image_sise" in err and "did you mean 'image_size'" in err
    assert main(["data", "--dataset", "celeba", "-p", "celeba_root", "/no/where"]) == 2
    assert "celeba_root" in capsys.readouterr().err


def test_data_command_prints_statistics(capsys, cache, tmp_path):
    png = tmp_path / "preview.png"
    assert main(["data", "--profile", "smoke", "--dataset", "synthetic", "--preview", str(png)]) == 0
    out = capsys.readouterr().out
    assert "synthetic: 64 images of 16px" in out and "facial_hair" in out and png.stat().st_size > 1000


def test_data_command_on_celeba(capsys, cache, celeba_root):
    assert main(["data", "--profile", "smoke", "--dataset", "celeba", "-p", "celeba_root", str(celeba_root)]) == 0
    out = capsys.readouterr().out
    assert "celeba: 64 images" in out and "skipped unreadable files: 0" in out


def test_train_command(capsys, cache):
    args = ["train", "--profile", "smoke", "--dataset", "synthetic", "-p", "train_steps", "2",
            "-p", "n_images", "8", "-p", "n_analysis", "4", "-p", "n_samples", "4",
            "-p", "batch_size", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "steps=2" in out and "trained ->" in out
    assert main(args) == 0
    assert "cache hit" in capsys.readouterr().out


def test_run_rejects_unknown_notebook_parameter(capsys):
    nb = ROOT / "book" / "01_data_and_model.ipynb"
    assert main(["run", str(nb), "-p", "bogus", "1"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["run", str(nb), "-p", "timesteps", "[5000]"]) == 2
    assert "'timesteps'" in capsys.readouterr().err


def test_cache_ls_and_verify(capsys, cache):
    args = ["train", "--profile", "smoke", "--dataset", "synthetic", "-p", "train_steps", "2",
            "-p", "n_images", "8", "-p", "n_analysis", "4", "-p", "n_samples", "4", "-p", "batch_size", "2"]
    assert main(args) == 0
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    # the final weights, the EMA snapshot of step 1 (snapshot steps of a 2-step run: 1 and 2 = final), and
    # the synthetic draw the model trained on
    assert "ok       model" in out and "dataset=synthetic" in out and "steps=2" in out and "3 entries" in out
    assert "ok       snapshot" in out and "step=1" in out
    assert "ok       data" in out and "seed=0" in out
    assert main(["cache", "verify"]) == 0 and "3 intact, 0 damaged" in capsys.readouterr().out
    (config_json,) = cache.glob("models/*/final/unet/config.json")
    config_json.write_text(config_json.read_text().replace('"norm_eps": 1e-05', '"norm_eps": 0.01'))
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"damaged: {config_json.parents[1]}: {config_json} does not match its sha256" in out
    assert config_json.exists()                                   # verify alone removes nothing
    assert main(["cache", "verify", "--fix"]) == 0 and "removed:" in capsys.readouterr().out
    assert not config_json.parents[1].exists() and main(["cache", "verify"]) == 0


def test_warnings_are_one_line(capsys, cache, small_celeba):
    assert main(["data", "--profile", "smoke", "--dataset", "celeba", "-p", "celeba_root", str(small_celeba),
                 "-p", "n_images", "11", "-p", "n_analysis", "4", "-p", "n_samples", "4",
                 "-p", "match_attributes", "False"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("circuitnb: warning: CelebA: skipped 1") and "999999.jpg" in err[0]


# --- every user error is one line on stderr and exit status 2, no usage dump --------------
CLI = Path(sys.executable).parent / "circuitnb"


def one_line(argv, env=None) -> str:
    """Run the installed command; assert exit 2, nothing on stdout, one stderr line and no usage; return the line."""
    out = subprocess.run([str(CLI), *argv], capture_output=True, text=True, env=env, timeout=300)
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and out.stdout == "" and len(lines) == 1, (argv, out.returncode, out.stderr)
    assert lines[0].startswith("circuitnb") and "usage:" not in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("argv, names", [
    (["train", "--dataset", "mnist"], ["circuitnb train: error:", "--dataset", "'mnist'", "'synthetic'", "'both'"]),
    (["run", "book/01_data_and_model.ipynb", "-p", "n_images"], ["circuitnb run: error:", "-p/--param",
                                                                  "-p NAME VALUE"]),
    (["frobnicate"], ["circuitnb: error:", "command", "'frobnicate'", "'train'", "'cache'"]),
    ([], ["circuitnb: error:", "command", "train, data, run, book, cache"]),
    (["train", "--bogus", "1"], ["circuitnb train: error:", "--bogus", "--dataset", "-p NAME VALUE"]),
    (["cache"], ["circuitnb cache: error:", "action", "ls, verify"]),
    (["cache", "ls", "--profile"], ["--profile", "'smoke'"]),
    (["run"], ["circuitnb run: error:", "notebook", ".ipynb"]),
], ids=["dataset-choice", "param-without-value", "unknown-command", "no-command", "unknown-option",
        "cache-without-action", "profile-without-value", "run-without-notebook"])
def test_command_line_mistakes_are_one_line_naming_the_argument(argv, names):
    line = one_line(argv)
    for name in names:
        assert name in line, (name, line)


def test_cache_commands_name_a_cache_folder_that_is_not_there(tmp_path):
    missing, blocker = tmp_path / "no" / "such", tmp_path / "a_file"
    blocker.write_text("")
    for action in ("ls", "verify"):
        line = one_line(["cache", action, "-p", "cache_dir", str(missing)])
        assert "'cache_dir'" in line and repr(str(missing)) in line and "does not exist" in line
        line = one_line(["cache", action, "--fix", "-p", "cache_dir", str(blocker)] if action == "verify"
                        else ["cache", action, "-p", "cache_dir", str(blocker)])
        assert "'cache_dir'" in line and repr(str(blocker)) in line and "is a file" in line
    env = {k: v for k, v in os.environ.items() if k != "CIRCUITNB_CACHE"} | {"CIRCUITNB_CACHE": str(missing)}
    assert "$CIRCUITNB_CACHE" in one_line(["cache", "verify"], env=env)
    assert not tmp_path.joinpath("no").exists() and blocker.read_text() == ""      # nothing created or touched


# --- the parts' fields: qualified on the command line, bare inside one part's notebook ------------------------
def test_retired_and_part_only_names_are_one_line_exit_2():
    line = one_line(["train", "--profile", "smoke", "-p", "vae_image_size", "32"])
    assert line == "circuitnb train: error: 'vae_image_size' is now 'vae.image_size'"
    line = one_line(["book", "--profile", "smoke", "--root", str(ROOT), "-p", "tab_steps", "5"])
    assert line == "circuitnb book: error: 'tab_steps' is now 'tabular.steps'"
    line = one_line(["data", "--profile", "smoke", "-p", "latent_dim", "4"])
    assert line.endswith("'latent_dim' belongs to a part; say which: 'vae.latent_dim', 'tabular.latent_dim', "
                         "'sae.latent_dim', 'mri.latent_dim'")
    nb = str(ROOT / "book" / "20_vae_data_models.ipynb")
    assert one_line(["run", nb, "-p", "sae_steps", "5"]).endswith("'sae_steps' is now 'sae.steps'")


def test_run_reads_a_part_notebooks_bare_names_as_that_parts(capsys):
    # checked before anything runs: 24 is no image side of Part II (16, 32 or 64), though it is one of Part I
    nb = str(ROOT / "book" / "20_vae_data_models.ipynb")
    for notebook, name in [(nb, "image_size"), (nb, "vae.image_size"), (nb[:-len("ipynb")] + "md", "image_size")]:
        assert main(["run", notebook, "-p", name, "24"]) == 2              # the .md runs its paired .ipynb
        assert "parameter 'vae.image_size' = 24 is out of range" in capsys.readouterr().err
    assert main(["run", nb, "-p", "sae.steps", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("circuitnb run: error: parameter 'sae.steps' is for Part IV's notebooks; "
                   "20_vae_data_models.ipynb is Part II's")
    assert main(["run", str(ROOT / "book" / "01_data_and_model.ipynb"), "-p", "vae.steps", "5"]) == 2
    assert "is for Part II's notebooks; 01_data_and_model.ipynb is Part I's" in capsys.readouterr().err

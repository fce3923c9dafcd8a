"""The wheel carries prompts/ and seeds/, and the public API is what __all__ says."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import synth

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_prompts_and_seeds(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("synth-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for prompt in (ROOT / "prompts").iterdir():
        assert f"synth/_bundled/prompts/{prompt.name}" in names
    assert "synth/_bundled/seeds/general.jsonl" in names
    assert "synth/_bundled/evals/heldout.jsonl" in names and "synth/_bundled/personas/builtin.jsonl" in names
    assert "synth/record.schema.json" in names

    # installed from the wheel alone (no checkout beside it), synth finds its seeds, prompts and schema inside it
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import synth, synth.prompts, synth.generation.seeds, synth.resources as r\n"
             "print(synth.__file__); print(synth.generation.seeds.default_seed_file()); print(r.schema_path())\n"
             "print(len(synth.load_seeds())); print(len(synth.prompts.template_text('bootstrap')) > 0)")
    env = {**os.environ, "PYTHONPATH": str(site)}
    lines = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True,
                           text=True).stdout.split()
    assert all(line.startswith(str(site)) for line in lines[:3]), lines
    assert int(lines[3]) >= 100 and lines[4] == "True"


def test_public_api():
    assert sorted(synth.__all__) == sorted(set(synth.__all__))
    for name in synth.__all__:
        assert hasattr(synth, name), name
    assert callable(synth.generate) and callable(synth.export)


def test_the_readme_api_table_is_the_public_api():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("The public API, all importable from `synth`", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"`(\w+)`", table))
    assert listed == set(synth.__all__) - {"__version__"}

"""The wheel carries prompts/ and seeds/, and the public API is what __all__ says."""

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
    assert "synth/record.schema.json" in names


def test_public_api():
    assert sorted(synth.__all__) == sorted(set(synth.__all__))
    for name in synth.__all__:
        assert hasattr(synth, name), name
    assert callable(synth.generate) and callable(synth.export)

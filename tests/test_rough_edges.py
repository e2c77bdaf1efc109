"""Rough edges a new user meets in the first minute, as the user notices them.

- ``weights import FILE`` installs where the app looks (the user data folder),
  and says how to use a file written anywhere else;
- ``weights info`` lists each folder it looked in once, and tells the truth
  about the published weights' licence;
- ``eval`` with an engine that cannot run still scores the others;
- a photo given as its own trimap is refused, and nothing is written;
- ``--device cuda`` with a classical engine says that engine runs on the CPU.

The autouse fixture in conftest.py makes ``tmp_path / "data"`` the user data
folder and ``tmp_path / "no-model-folder"`` the model folder.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from dim_studio.net.model import DIMConfig, random_dim
from dim_studio.net.weights import save_weights

from conftest import files_under, save_gray, save_rgb

SMALL = DIMConfig(width=1 / 16)


@pytest.fixture(scope="module")
def tiny_model():
    return random_dim(SMALL, seed=1)


@pytest.fixture
def weights_file(tmp_path, tiny_model):
    """A small, valid DIM Studio weights file in a downloads folder the app never searches."""
    path = tmp_path / "downloads" / "mine.safetensors"
    path.parent.mkdir()
    save_weights(path, tiny_model, {"provenance": {"kind": "training", "steps": 1}})
    return path


# ---------------------------------------------------------------- weights import


def test_import_without_output_installs_where_the_app_looks(tmp_path, weights_file, run_cli):
    result = run_cli("weights", "import", weights_file)
    installed = tmp_path / "data" / "mine.safetensors"
    assert result.code == 0, result.err
    assert f"Wrote {installed}" in result.out
    assert installed.is_file()
    assert result.err == ""  # found by the search: nothing to explain

    info = run_cli("weights", "info")
    assert info.code == 0, info.err
    assert f"Weights the app would use: {installed}" in info.out


def test_import_elsewhere_writes_the_file_and_says_how_to_use_it(tmp_path, weights_file, run_cli):
    target = tmp_path / "elsewhere" / "mine.safetensors"
    result = run_cli("weights", "import", weights_file, "-o", target)
    assert result.code == 0, result.err
    assert target.is_file()
    note = result.err.strip()
    assert note.count("\n") == 0 and note.startswith("dim-studio: note: ")
    assert f"does not look for weights in {target.parent}" in note
    assert f"--weights {target}" in note and f"DIM_STUDIO_WEIGHTS={target}" in note
    assert str(tmp_path / "data") in note
    # and the search does not find it
    assert run_cli("weights", "info").code == 1


def test_import_into_the_searched_folder_behind_another_file_names_the_one_used(tmp_path, weights_file, run_cli):
    first = tmp_path / "data" / "a.safetensors"
    assert run_cli("weights", "import", weights_file, "-o", first).code == 0
    second = tmp_path / "data" / "b.safetensors"
    result = run_cli("weights", "import", weights_file, "-o", second)
    assert result.code == 0 and second.is_file()
    assert f"uses {first} first" in result.err and f"--weights {second}" in result.err


def test_a_vgg16_start_for_training_gets_no_advice_to_use_it_for_matting(tmp_path, tiny_model, run_cli):
    src = tmp_path / "vgg16-init.safetensors"
    save_weights(src, tiny_model, {"provenance": {"kind": "vgg16-init", "source": "vgg16-npz"}})
    elsewhere = run_cli("weights", "import", src, "-o", tmp_path / "init" / "vgg.safetensors")
    assert elsewhere.code == 0 and elsewhere.err == ""
    searched = run_cli("weights", "import", src)
    assert searched.code == 0
    assert "starting point for training, not for matting" in searched.err and str(tmp_path / "data") in searched.err


# ---------------------------------------------------------------- weights info


def _looked_in(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("Looked in:") + 1
    listed = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        listed.append(line.strip())
    return listed


def test_weights_info_lists_a_folder_once(tmp_path, monkeypatch, run_cli):
    data = tmp_path / "data"
    data.mkdir()
    # The model folder is the user data folder, spelled another way.
    monkeypatch.setenv("DIM_STUDIO_MODEL_DIR", str(tmp_path / "data" / ".." / "data"))
    result = run_cli("weights", "info")
    assert result.code == 1
    assert _looked_in(result.err) == [f"user data folder: {data}"]


def test_weights_named_by_the_environment_as_a_search_folder_are_listed_once(tmp_path, monkeypatch, run_cli):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DIM_STUDIO_WEIGHTS", str(data))
    result = run_cli("weights", "info")
    assert result.code == 1
    listed = _looked_in(result.err) if "Looked in:" in result.err else []
    assert sum(str(data) == entry.split(": ", 1)[1] for entry in listed) <= 1
    assert result.err.count(f"points to {data}") == 1


def test_openmmlab_weights_licence_says_the_training_data_restricts_use(tmp_path, tiny_model, run_cli):
    # As an OpenMMLab import made by an earlier version recorded it: the code's licence only.
    path = tmp_path / "old-import.safetensors"
    save_weights(path, tiny_model, {"provenance": {
        "kind": "import", "source": "openmmlab", "source_licence": "Apache-2.0 (OpenMMLab mmediting)",
    }})
    result = run_cli("weights", "info", path)
    assert result.code == 0, result.err
    licence = next(line for line in result.out.splitlines() if line.startswith("Licence:"))
    assert "Apache-2.0" in licence and "Composition-1k" in licence
    assert "non-commercial" in licence and "commercial use" in licence
    assert "source_licence" not in result.out  # the stale "Apache-2.0" alone is not shown


def test_no_message_speaks_of_the_seed():
    from dim_studio.net import importers, weights

    for module in (importers, weights):
        with open(module.__file__, encoding="utf-8") as fh:
            assert "seed's" not in fh.read(), module.__name__


# ---------------------------------------------------------------- eval


@pytest.fixture
def bench(synth):
    images, trimaps, alphas = synth.dir("images"), synth.dir("trimaps"), synth.dir("gt")
    synth.photo(images, "one", trimap_dir=trimaps, alpha_dir=alphas, seed=1)
    return images, trimaps, alphas


def test_eval_reports_an_engine_that_cannot_run_and_scores_the_others(bench, synth, run_cli):
    images, trimaps, alphas = bench
    json_path = synth.root / "eval.json"
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas,
                     "--engine", "dim", "--engine", "closed-form", "--json", json_path, "-q")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    lines = result.out.splitlines()
    # the header says what the numbers are
    assert lines[0].split() == ["engine", "image", "SAD", "MSE", "Gradient", "Connectivity", "time"]
    assert lines[1].split() == ["(sum/1000)", "(mean)", "(sum/1000)", "(sum/1000)", "(s)"]
    scored = [line.split() for line in lines if line.startswith("closed-form")]
    assert [r[1] for r in scored] == ["one.png", "mean"]
    dim_rows = [line for line in lines if line.startswith("dim ")]
    assert len(dim_rows) == 1
    assert "not run" in dim_rows[0] and "needs a weights file" in dim_rows[0]
    # stderr has the whole reason, with how to get weights
    assert "the dim engine could not run" in result.err and "weights download" in result.err
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["engines"] == ["closed-form"]
    assert [e["engine"] for e in data["not_run"]] == ["dim"]


def test_eval_fails_when_no_engine_can_run(bench, run_cli):
    images, trimaps, alphas = bench
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas,
                     "--engine", "dim", "-q")
    assert result.code == 1
    assert "no engine could run" in result.err and "Traceback" not in result.err
    assert any(line.startswith("dim ") and "not run" in line for line in result.out.splitlines())


def test_an_engine_out_of_memory_while_created_is_a_row_not_a_crash(bench):
    from dim_studio.engines import create_engine
    from dim_studio.evaluation import create_engines, evaluate_folder

    def no_memory():
        raise MemoryError()

    engines, not_run = create_engines({"big": no_memory, "closed-form": lambda: create_engine("closed-form")})
    assert list(engines) == ["closed-form"] and not_run == [("big", "out of memory")]
    results = evaluate_folder(*bench, engines, not_run=not_run, warmup=False)
    assert results.engines == ["closed-form"] and results.images == ["one.png"]
    table = results.format_table()
    assert any(line.split()[:3] == ["big", "not", "run"] for line in table.splitlines() if line)


# ---------------------------------------------------------------- not a trimap


def test_the_photo_given_as_its_own_trimap_is_refused_and_nothing_is_written(scene, tmp_path, run_cli):
    photo = save_rgb(tmp_path / "in" / "photo.png", scene.image)
    before = photo.read_bytes()
    out = tmp_path / "out"
    result = run_cli("matte", photo, "--trimap", photo, "-o", out / "alpha.png",
                     "--cutout", out / "cutout.png", "--engine", "closed-form")
    assert result.code == 1
    err = result.err.strip()
    assert err.count("\n") == 0 and err.startswith("dim-studio: error: ")
    assert "photo.png" in err and "does not look like a trimap" in err
    assert "%" in err and "grey 128" in err
    assert not out.exists() or files_under(out) == set()
    assert photo.read_bytes() == before


def test_a_trimap_with_a_few_ambiguous_pixels_is_read_with_a_warning(scene, tmp_path, caplog):
    from dim_studio.images import read_trimap

    noisy = scene.trimap.copy()
    flat = noisy.reshape(-1)
    flat[: flat.size // 10] = 70  # 10% in-between levels: read as unknown, with a warning
    path = save_gray(tmp_path / "t.png", noisy)
    with caplog.at_level(logging.WARNING, logger="dim_studio.images"):
        trimap = read_trimap(path)
    assert set(np.unique(trimap)) <= {0, 128, 255}
    assert any("t.png" in r.getMessage() and "10%" in r.getMessage() for r in caplog.records)


def test_a_jpeg_trimap_is_read_without_complaint(scene, tmp_path, caplog):
    from PIL import Image

    from dim_studio.images import read_trimap

    path = tmp_path / "t.jpg"
    Image.fromarray(scene.trimap, "L").save(path, quality=75)
    with caplog.at_level(logging.WARNING, logger="dim_studio.images"):
        trimap = read_trimap(path)
    assert caplog.records == []
    assert np.mean(trimap == scene.trimap) > 0.98


# ---------------------------------------------------------------- device


def test_a_device_with_a_classical_engine_says_it_runs_on_the_cpu(scene, tmp_path, run_cli):
    photo = save_rgb(tmp_path / "photo.png", scene.image)
    trimap = save_gray(tmp_path / "trimap.png", scene.trimap)
    result = run_cli("matte", photo, "--trimap", trimap, "-o", tmp_path / "a.png",
                     "--engine", "closed-form", "--device", "cuda")
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if "runs on the CPU" in line]
    assert len(notes) == 1 and notes[0].startswith("dim-studio: note: ") and "cuda" in notes[0]
    quiet = run_cli("matte", photo, "--trimap", trimap, "-o", tmp_path / "b.png", "--engine", "closed-form")
    assert "runs on the CPU" not in quiet.err

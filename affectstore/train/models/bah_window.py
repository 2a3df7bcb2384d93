"""``bah-window``: per target frame, centred windows of each modality, LSTM-encoded and fused
(Hallmen et al., ABAW 2025, ambivalence/hesitancy).

Default windows follow the paper, chosen by what each feature was extracted from (its
provenance ``input``): face features 20 s sampled at 400 equidistant frames, audio 12 s,
transcript features (word- or segment-timed embeddings) the samples within +-10 s with a
marker at the target time. Encoders and fusion are `LSTMFusionNet`'s. Training is BCE,
lr 7.5e-6 with cosine decay, 10 epochs, each epoch drawn balanced over the two classes from
label-homogeneous stretches; the decision threshold is chosen on validation by the task
pipeline, and evaluation runs on every frame or every ``eval_stride``-th (interpolated between).
"""

from __future__ import annotations

from affectstore.train.models.lstm_fusion import LSTMFusionNet
from affectstore.train.sequence.estimator import SequenceEstimator
from affectstore.train.sequence.streams import StreamSpec


class BAHWindow(SequenceEstimator):
    """Windowed LSTM fusion for frame-level targets; ``arch`` as `LSTMFusion` plus the default windows."""

    network = LSTMFusionNet
    arch_defaults = {"hidden": 256, "layers": 2, "fusion_hidden": 256, "global_mean": False,
                     "vision_window": 20.0, "vision_samples": 400, "audio_window": 12.0, "text_window": 20.0}

    def default_streams(self, view) -> dict[str, StreamSpec]:
        """One stream per feature, windowed by the kind of input it was extracted from."""
        a = self._arch()
        out = {}
        for f, info in view.source.infos.items():
            if info.kind == "video":
                out[f] = StreamSpec((f,), pooled=True)
            elif info.input in ("faces", "frames"):
                out[f] = StreamSpec((f,), window=a["vision_window"], samples=int(a["vision_samples"]))
            elif info.input == "transcript" or info.input == "text":
                out[f] = StreamSpec((f,), window=a["text_window"], marker=True)
            else:  # audio and anything else sampled in time
                out[f] = StreamSpec((f,), window=a["audio_window"])
        return out

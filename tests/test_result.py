import json

import numpy as np
import pytest
from pyannote.core import Annotation, Segment

from diarize.errors import DiarizeError
from diarize.result import Result, Speaker, Utterance, read_rttm, utterances_from_annotation


@pytest.fixture
def result() -> Result:
    utterances = [Utterance("A", 0.5, 2.0, 0.9), Utterance("B", 2.1, 4.0, 0.7), Utterance("A", 4.5, 5.0, 1.0)]
    speakers = [Speaker("A", 2.0, 2, np.ones(4, np.float32) / 2), Speaker("B", 1.9, 1, np.zeros(4, np.float32))]
    return Result(utterances, speakers, 6.0, "test-model", {"k": 1}, uri="call 1")


def test_json_round_trip_keeps_everything(result):
    data = json.loads(result.to_json(with_centroids=True))
    assert data["num_speakers"] == 2 and data["audio_duration"] == 6.0
    back = Result.from_dict(data)
    assert back.utterances == result.utterances
    assert np.allclose(back.speaker("A").centroid, 0.5)
    assert "centroid" not in json.loads(result.to_json())["speakers"][0]
    stored_before = {**data, "speakers": [{("label" if k == "speaker" else k): v for k, v in s.items()}
                                          for s in data["speakers"]]}  # results written before output version 2
    assert [s.label for s in Result.from_dict(stored_before).speakers] == ["A", "B"]


def test_rttm_round_trip(result, tmp_path):
    path = tmp_path / "out.rttm"
    path.write_text(result.to_rttm())
    annotations = read_rttm(path)
    assert list(annotations) == ["call_1"]
    assert sorted((u.speaker, u.start, u.end) for u in utterances_from_annotation(annotations["call_1"])) == sorted(
        (u.speaker, u.start, u.end) for u in result.utterances
    )


def test_annotation_conversion(result):
    ann = result.to_annotation()
    assert isinstance(ann, Annotation)
    assert ann.label_duration("A") == pytest.approx(2.0)
    assert ann.crop(Segment(2.5, 3.0)).labels() == ["B"]


def test_malformed_rttm_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER x 1 0.0\n")
    with pytest.raises(DiarizeError, match="bad.rttm:1"):
        read_rttm(path)

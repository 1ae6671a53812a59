"""Model resolution: bundled aliases, local directories, hub ids, and a fast fallback when the hub is away."""

import pytest

from adapt import models
from adapt.errors import ModelError
from tests.test_hostile import with_own_code


def test_alias_resolves_to_the_bundled_minilm():
    resolved = models.resolve("minilm")
    assert resolved.source == "bundled"
    assert resolved.resolved == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolved.fallback_reason is None


def test_local_directory_is_used_as_is(tiny):
    resolved = models.resolve(str(tiny["student"]))
    assert (resolved.source, resolved.path) == ("local", str(tiny["student"].resolve()))


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="is not a model directory"):
        models.resolve(str(tmp_path))


def test_missing_local_path_is_refused():
    with pytest.raises(ModelError, match=r"model directory './no/such/model' not found; check the path"):
        models.resolve("./no/such/model")


def test_offline_hub_id_falls_back_without_asking_the_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.urllib.request, "urlopen", lambda *a, **k: pytest.fail("offline must not ask"))
    resolved = models.resolve("BAAI/bge-small-en-v1.5", "base")
    assert resolved.source == "bundled" and resolved.requested == "BAAI/bge-small-en-v1.5"
    assert resolved.resolved == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolved.fallback_reason == ("cannot load 'BAAI/bge-small-en-v1.5': HF_HUB_OFFLINE is set; "
                                        "using the bundled sentence-transformers/all-MiniLM-L6-v2 instead")


def test_unreachable_hub_says_why(monkeypatch):
    # nothing listens on this loopback port: a real connection attempt that fails at once
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    reachable, why = models.probe_hub("BAAI/bge-small-en-v1.5", timeout=3)
    assert not reachable
    assert why == "the hub is unreachable ([Errno 111] Connection refused)"


def test_a_hub_that_never_answers_is_given_up_on(monkeypatch):
    """The probe waits for its thread at most ``timeout`` (+0.5 s); the timing itself is bench's business."""
    import threading

    release = threading.Event()

    def never_answers(*args, **kwargs):
        release.wait(30)
        raise OSError("answered too late")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(models.urllib.request, "urlopen", never_answers)
    try:
        assert models.probe_hub("BAAI/bge-small-en-v1.5", timeout=0.1) == (
            False, "the hub did not answer within 0 s")
    finally:
        release.set()


def test_guide_falls_back_to_the_strongest_bundled_model(monkeypatch):
    monkeypatch.setattr(models, "available_bundled", lambda cache_dir=None: ["minilm", "mpnet"])
    monkeypatch.setattr(models, "bundled_path", lambda alias, cache_dir=None: f"/bundled/{alias}")
    resolved = models.resolve("BAAI/bge-base-en-v1.5", "guide")
    assert resolved.resolved == "sentence-transformers/all-mpnet-base-v2"
    assert resolved.path == "/bundled/mpnet"


def test_no_fallback_turns_the_fallback_into_an_error():
    with pytest.raises(ModelError) as error:
        models.resolve("BAAI/bge-small-en-v1.5", fallback=False)
    assert str(error.value) == (
        "cannot load 'BAAI/bge-small-en-v1.5': HF_HUB_OFFLINE is set and it is not in the local cache; "
        "connect to the internet, pass a local directory or one of: minilm, mpnet, or drop --no-fallback")


def test_default_guide_shares_the_bge_tokenizer_and_is_stronger():
    assert models.default_guide("BAAI/bge-small-en-v1.5") == "BAAI/bge-base-en-v1.5"
    assert models.default_guide("minilm") == "mpnet"


def test_a_model_with_its_own_code_needs_the_persons_flag(tiny, tmp_path):
    with_own_code(tiny["student"], tmp_path / "ran")
    with pytest.raises(ModelError) as error:
        models.load(models.resolve(str(tiny["student"])))
    assert str(error.value) == (f"the base model '{tiny['student']}' ships its own Python code; "
                                "pass --trust-remote-code if you trust it")
    assert not (tmp_path / "ran").exists()


def test_a_longer_sequence_than_the_model_reads_is_refused(tiny):
    spec = models.resolve(str(tiny["student"]))
    assert models.load(spec, max_seq_length=128).max_seq_length == 128  # the tiny BERT has 128 positions
    with pytest.raises(ModelError) as error:
        models.load(spec, max_seq_length=129)
    assert str(error.value) == (f"--max-seq-length 129 is longer than the base model '{tiny['student']}' can read "
                                "(128 tokens); pass 128 or less")


def test_the_fine_tuned_model_of_a_run_is_one_spec():
    assert models.fine_tuned("/runs/a/model").to_dict() == {
        "role": "fine-tuned", "requested": "/runs/a/model", "resolved": "fine-tuned", "path": "/runs/a/model",
        "source": "local", "fallback_reason": None}


def test_loaded_model_reports_its_own_settings(tiny):
    model = models.load(models.resolve(str(tiny["student"])), max_seq_length=48)
    facts = models.describe(model)
    assert facts["dimension"] == 32 and facts["max_seq_length"] == 48 and facts["parameters"] > 0


def test_loading_garbage_is_a_model_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="could not load the base model"):
        models.load(models.resolve(str(folder)))


def test_planning_names_the_fallback_without_unpacking_anything(monkeypatch):
    monkeypatch.setattr(models, "bundled_path", lambda *a, **k: pytest.fail("planning must not unpack"))
    plan = models.resolve("BAAI/bge-small-en-v1.5", "base", locate=False)
    assert (plan.resolved, plan.source, plan.path) == ("sentence-transformers/all-MiniLM-L6-v2", "bundled", "")
    assert plan.fallback_reason.startswith("cannot load 'BAAI/bge-small-en-v1.5'")

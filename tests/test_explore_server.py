"""``usvpipe explore``: the local server plays any syllable of the run, nothing else, and saves the review."""
from __future__ import annotations

import http.client
import io
import threading

import pandas as pd
import pytest
import soundfile as sf

from usvpipe.errors import UsvpipeError
from usvpipe.pipeline.explore import ExploreParams, find_target, make_site
from usvpipe.viz._explore_server import make_server

from small_run import SR, make_small_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_small_run(tmp_path_factory.mktemp("explore"))


@pytest.fixture
def served(run):
    site = make_site(find_target(run))
    server = make_server(site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site, server.server_address[1]
    server.shutdown()
    server.server_close()
    (run / "review.csv").unlink(missing_ok=True)


def _request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_the_server_binds_to_this_computer_only_and_finds_the_runs_recordings(run):
    target = find_target(run)
    assert target.audio_root == (run.parent / "in").resolve() or target.audio_root == run.parent / "in"
    server = make_server(make_site(target))
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1" and port > 0
    finally:
        server.server_close()


def test_every_syllable_is_cut_from_its_recording_not_only_the_embedded_ones(served, run):
    site, port = served
    table = pd.read_csv(run / "umap" / "embedding.csv")
    page = _request(port, "GET", "/")[1].decode()
    assert "window.USVPIPE_SERVER" in page and '"clip": "/clip/"' in page
    for row in (0, len(table) - 1):  # the first and last rows: at most 4 of 48 have an embedded clip
        status, blob = _request(port, "GET", f"/clip/{row}.wav")
        assert status == 200 and blob[:4] == b"RIFF"
        y, sr = sf.read(io.BytesIO(blob))
        dur = table.at[row, "offset_s"] - table.at[row, "onset_s"]
        assert sr == SR // 16 and len(y) / sr == pytest.approx(16 * (dur + 0.02), abs=0.02)


@pytest.mark.parametrize("path", ["/clip/48.wav", "/clip/-1.wav", "/clip/../../etc/passwd", "/clip/1.wav/../../x",
                                  "/../latents.csv", "/run_manifest.json", "/umap/embedding.csv", "/%2e%2e/latents.csv",
                                  "/clip/0.wav%00", "/review"])
def test_nothing_but_the_page_and_the_runs_syllables_is_served(served, path):
    _, port = served
    status, _ = _request(port, "GET", path)
    assert status == 404


def test_a_recording_path_leading_out_of_the_recordings_folder_is_refused(run, tmp_path):
    site = make_site(find_target(run))
    secret = run.parent / "secret.wav"
    sf.write(secret, [0.0] * 1000, SR)
    site.table.loc[0, "recording"] = "../secret.wav"  # a table edited to point outside: still refused
    site.table.loc[1, "recording"] = str(secret.resolve())
    assert site.clip(0) is None and site.clip(1) is None
    assert site.clip(2)[:4] == b"RIFF"


def test_requests_naming_another_host_or_origin_are_refused(served):
    _, port = served
    assert _request(port, "GET", "/", headers={"Host": "evil.example:80"})[0] == 403
    body = "id,review,label\nA/A0/r.wav#0,call,call\n"
    status, _ = _request(port, "POST", "/review", body, {"Origin": "http://evil.example", "Content-Type": "text/csv"})
    assert status == 403


def test_the_review_is_written_into_the_run_checked_and_rebuilt_from_the_runs_table(served, run):
    _, port = served
    body = 'id,recording,onset_s,offset_s,review,label\nA/A0/r.wav#1,forged.wav,9,9,relabel,"up, then down"\nB/B3/r.wav#5,,,,noise,noise\n'
    status, reply = _request(port, "POST", "/review", body, {"Content-Type": "text/csv"})
    assert status == 200, reply
    saved = pd.read_csv(run / "review.csv", keep_default_na=False)
    assert saved["id"].tolist() == ["A/A0/r.wav#1", "B/B3/r.wav#5"]
    assert saved["recording"].tolist() == ["A/A0/r.wav", "B/B3/r.wav"]  # the run's, not the posted ones
    assert saved.loc[0, "label"] == "up, then down" and saved.loc[1, "review"] == "noise"
    assert saved.loc[0, "onset_s"] == pytest.approx(0.24)
    # a page reloaded later starts from this review
    assert '"A/A0/r.wav#1": {"row": 1, "review": "relabel"' in _request(port, "GET", "/")[1].decode()


@pytest.mark.parametrize("body, why", [
    ("id,review,label\nnot-a-syllable#0,call,call\n", "not a syllable of this run"),
    ("id,review,label\nA/A0/r.wav#0,maybe,\n", "is not one of call, noise, relabel"),
    ("id,label\nA/A0/r.wav#0,x\n", "lacks column(s) review"),
])
def test_a_bad_review_is_refused_whole_and_the_file_left_as_it_was(served, run, body, why):
    _, port = served
    ok = "id,review,label\nA/A1/r.wav#0,call,call\n"
    assert _request(port, "POST", "/review", ok, {"Content-Type": "text/csv"})[0] == 200
    before = (run / "review.csv").read_bytes()
    status, reply = _request(port, "POST", "/review", body, {"Content-Type": "text/csv"})
    assert status == 400 and why in reply.decode()
    assert (run / "review.csv").read_bytes() == before


def test_explore_says_what_to_do_without_an_explorer_and_without_recordings(run, tmp_path):
    with pytest.raises(UsvpipeError, match="run the umap stage first"):
        find_target(tmp_path)
    with pytest.raises(UsvpipeError, match="is not a folder"):
        find_target(run, ExploreParams(recordings=str(tmp_path / "nope")))


def test_the_cli_refuses_a_folder_without_an_explorer_in_one_line(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    res = CliRunner().invoke(main, ["explore", str(tmp_path)])
    assert res.exit_code == 2 and "has no umap/explorer.html" in res.output and "Traceback" not in res.output

"""Whole animations, pure: farm-style frame ranges, windows that overlap by 8m+1 frames and cover
exactly the range, and a job file a rerun can trust."""

from __future__ import annotations

import json

import pytest

from blender_addon.core import animation as an


@pytest.mark.parametrize("text, ranges", [
    ("1-240", [(1, 240)]),
    ("1-30, 47-327", [(1, 30), (47, 327)]),
    (" 47-327 ,1-30 ", [(1, 30), (47, 327)]),
    ("5", [(5, 5)]),
    ("-10--2", [(-10, -2)]),
])
def test_frame_ranges_as_render_farms_write_them(text, ranges):
    assert an.parse_frame_ranges(text) == ranges


@pytest.mark.parametrize("text, words", [
    ("1-x", "frame range '1-x' is not START-END or FRAME"),
    ("30-1", "ends before it starts; write it as 1-30"),
    ("1-30, 20-40", "frame ranges 1-30 and 20-40 overlap"),
    ("", "no frame range given"),
])
def test_bad_ranges_say_what_to_write(text, words):
    with pytest.raises(ValueError) as err:
        an.parse_frame_ranges(text)
    assert words in str(err.value)


def test_markers_cut_a_range_into_shots():
    assert an.split_at_markers(1, 100, [1, 40, 70, 200]) == [(1, 39), (40, 69), (70, 100)]
    assert an.split_at_markers(1, 100, []) == [(1, 100)]


@pytest.mark.parametrize("start, end, max_frames, overlap", [
    (1, 240, 121, 17), (1, 57, 25, 9), (10, 10, 121, 17), (1, 121, 121, 17), (1, 122, 121, 17),
    (1, 500, 49, 25), (100, 333, 97, 33),
])
def test_windows_cover_every_frame_once_after_the_crossfade(start, end, max_frames, overlap):
    windows = an.plan_windows(start, end, max_frames, overlap)
    assert windows[0].frame_start == start and windows[0].condition_frames == 0
    covered = []
    for prev, w in zip([None, *windows], windows, strict=False):
        assert (w.num_frames - 1) % 8 == 0 and 9 <= w.num_frames <= max(max_frames, 9)
        if prev is not None:
            # The new window re-renders exactly the previous one's last `overlap` frames.
            assert w.condition_frames == overlap and w.frame_start == prev.frame_end - overlap + 1
            assert prev.keep_end == prev.frame_end  # only the last window runs past the range
            covered = covered[:-overlap]
        covered += list(range(w.frame_start, w.keep_end + 1))
    assert covered == list(range(start, end + 1))
    assert windows[-1].keep_end == end and windows[-1].frame_end >= end


def test_overlap_must_be_8m_plus_1_and_leave_new_frames():
    with pytest.raises(ValueError, match=r"overlap must be 8m\+1 frames and at least 9 \(got 12\); try 9 or 17"):
        an.plan_windows(1, 300, 121, 12)
    with pytest.raises(ValueError, match="leaves no new frames in a 25-frame window"):
        an.plan_windows(1, 300, 25, 25)


def test_the_job_file_round_trips_and_counts_progress(tmp_path):
    job = an.plan_animation("shot.blend", "Scene", [(1, 57), (101, 109)], max_frames=25, overlap=9)
    assert [s.name for s in job.shots] == ["shot_0001-0057", "shot_0101-0109"]
    assert [len(s.windows) for s in job.shots] == [3, 1] and job.frames_total == 66
    ids = [w.request_id for s in job.shots for w in s.windows]
    assert len(set(ids)) == 4  # each window its own request id, kept across reruns
    job.shots[0].windows[0].state = an.DONE
    job.shots[0].windows[1].state = an.DONE
    assert (job.windows_done, job.frames_done) == (2, 41)  # frames 1-25, then 26-41
    an.save_job(job, tmp_path)
    again = an.load_job(tmp_path)
    assert again == job and an.same_request(again, [(1, 57), (101, 109)], 25, 9)
    assert not an.same_request(again, [(1, 57)], 25, 9)
    assert not list(tmp_path.glob(".*.tmp"))
    doc = json.loads((tmp_path / an.JOB_FILE).read_text())
    doc["schema"] = "ltx-animation/9"
    (tmp_path / an.JOB_FILE).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="schema 'ltx-animation/9' is not ltx-animation/2; delete it"):
        an.load_job(tmp_path)


def test_a_job_keeps_its_quality_and_a_job_file_from_before_preview_is_final(tmp_path):
    job = an.plan_animation("shot.blend", "Scene", [(1, 57)], max_frames=25, overlap=9, quality="preview",
                            size=(384, 256), display_size=(768, 512))
    an.save_job(job, tmp_path)
    again = an.load_job(tmp_path)
    assert (again.quality, again.size, again.display_size) == ("preview", [384, 256], [768, 512])
    assert an.same_request(again, [(1, 57)], 25, 9, "preview", (384, 256))
    assert not an.same_request(again, [(1, 57)], 25, 9, "final", (384, 256))  # Final must not continue Preview tails
    assert not an.same_request(again, [(1, 57)], 25, 9, "preview", (512, 256))  # nor another size
    doc = json.loads((tmp_path / an.JOB_FILE).read_text())
    for key in ("quality", "size", "display_size"):
        del doc[key]  # written before Render Animation had a Preview (schema 1)
    doc["schema"] = "ltx-animation/1"
    (tmp_path / an.JOB_FILE).write_text(json.dumps(doc))
    old = an.load_job(tmp_path)
    assert (old.quality, old.size, old.display_size) == ("final", [], [])
    assert an.same_request(old, [(1, 57)], 25, 9, "final", (768, 512))  # size unknown: not held against it
    doc.update(schema=an.JOB_SCHEMA, quality="draft")
    (tmp_path / an.JOB_FILE).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="quality 'draft' is not one of preview, final"):
        an.load_job(tmp_path)
    with pytest.raises(ValueError, match="quality must be one of preview, final"):
        an.plan_animation("shot.blend", "Scene", [(1, 57)], quality="draft")


def test_crossfade_weights_give_both_windows_every_shared_frame():
    from render_backend.takes import crossfade_weights

    assert an.crossfade_weights(3) == pytest.approx([0.25, 0.5, 0.75])
    assert list(crossfade_weights(3)) == pytest.approx(an.crossfade_weights(3))  # client and server agree

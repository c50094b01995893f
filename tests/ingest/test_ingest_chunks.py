"""`origin.transcode.chunks`: every video segment's key frame in a CMAF chunk of its own, on real
ffmpeg output (both layouts): the samples are the same packets, each key chunk alone is a whole
fragment that decodes to one key frame, a sidx gives the new size, and input it does not
understand is refused."""
from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from origin.transcode.chunks import split_key_samples
from origin.transcode.mp4 import boxes
from origin.transcode.package import PackageTask, measure_packaged, package_command, split_video_files

from conftest import ffmpeg_path, make_clip


def packets(path: Path) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "packet=pts,dts,duration,size,flags", "-of", "csv", str(path)],
                          capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chunks")
    clip = make_clip(root / "v.mp4", seconds=6, audio=())
    out = {}
    for layout in ("segments", "byterange"):
        folder = root / layout
        folder.mkdir()
        task = PackageTask(task_id=layout, ffmpeg=ffmpeg_path(), source=str(clip), out_dir=str(folder),
                           key_prefix="video/x", layout=layout, segment_duration_s=2.0, frame_rate=Fraction(25))
        subprocess.run(package_command(task), check=True, timeout=120)
        (folder / "ffmpeg.m3u8").unlink()
        out[layout] = folder
    return out


def whole(folder: Path, layout: str) -> Path:
    if layout == "byterange":
        return folder / "media.mp4"
    joined = folder / "joined.mp4"
    joined.write_bytes(b"".join(p.read_bytes() for p in [folder / "init.mp4", *sorted(folder.glob("*.m4s"))]))
    return joined


@pytest.mark.parametrize("layout", ["segments", "byterange"])
def test_key_frames_become_chunks_of_their_own(packaged, layout, tmp_path):
    before = tmp_path / "before"
    shutil.copytree(packaged[layout], before)
    after = tmp_path / "after"
    shutil.copytree(packaged[layout], after)
    old = measure_packaged(str(before), "video/x", layout)
    split_video_files(str(after), layout)
    new = measure_packaged(str(after), "video/x", layout)

    assert packets(whole(after, layout)) == packets(whole(before, layout))  # the very same samples
    assert [s.duration_s for s in new.segments] == [s.duration_s for s in old.segments]
    assert new.decode_times_s == old.decode_times_s and len(new.segments) == 3
    # one more moof+mdat per segment, and nothing else: a little over 100 bytes
    assert all(0 < b.size_bytes - a.size_bytes < 200 for a, b in zip(old.segments, new.segments))
    init = (after / ("media.mp4" if layout == "byterange" else "init.mp4")).read_bytes()[:new.init.size_bytes]
    for i in new.iframes:
        data = (after / Path(i.path).name).read_bytes()
        key = data[i.offset_bytes:i.offset_bytes + i.size_bytes]
        assert [b.type for b in boxes(key)] == [b"moof", b"mdat"]  # a whole fragment
        one = tmp_path / "one.mp4"
        one.write_bytes(init + key)
        assert [line.split(",")[-1] for line in packets(one).splitlines()] == ["K_"]
    for seg in new.segments:  # each sidx now references the whole segment after it
        data = (after / Path(seg.path).name).read_bytes()[seg.offset_bytes or 0:]
        top = boxes(data[:seg.size_bytes])
        sidx = next(b for b in top if b.type == b"sidx")
        version = data[sidx.body]
        at = sidx.body + 4 + 8 + (16 if version == 1 else 8) + 2 + 2
        assert struct.unpack_from(">I", data, at)[0] == seg.size_bytes - sidx.end


def test_what_it_does_not_understand_is_refused(packaged):
    data = (packaged["byterange"] / "media.mp4").read_bytes()
    moof = next(b for b in boxes(data) if b.type == b"moof")
    traf = next(b for b in boxes(data, moof.body, moof.end) if b.type == b"traf")
    # a second traf in the moof (two tracks in one file)
    doubled = bytearray(data[:moof.offset]) + struct.pack(">I", moof.size + traf.size) + data[moof.offset + 4:traf.end] \
        + data[traf.offset:traf.end] + data[traf.end:]
    with pytest.raises(ValueError, match="2 traf boxes"):
        split_key_samples(bytes(doubled))
    with pytest.raises(ValueError, match="ends inside a fragment"):
        split_key_samples(data[:moof.end])

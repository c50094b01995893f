"""SIGTERM or SIGINT sent to a running ``vodstack ingest`` process alone (not to its group) stops
every ffmpeg it started, on the local pool and on Dask: after the ingest has exited none is alive,
it exited 128 + the signal with one line saying it was interrupted, nothing was published and
its work folder is gone.

The video encode is caught under ``/proc`` (an ffmpeg whose command line names the test's work
folder) and frozen with SIGSTOP before the signal: a frozen encode never ends by itself, so if it
is gone once the ingest has exited, something killed it. (Before the fix the local pool waited
for its running encodes to end, which a frozen one never does; a task already running on a Dask
worker went on after the ingest had left.) Nothing here bounds elapsed seconds: the waits are
hang guards.

The same for the children of every other stage (an ``--ffmpeg`` wrapper whose children of one
stage freeze themselves before they exec ffmpeg), for a task's failure (the running tasks are
stopped too), and for ``run_child`` under an executor: the child's whole process group is killed,
and a cancelled ingest starts no new child.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, make_clip

HANG_GUARD_S = 120.0  # a stopping ingest takes one poll of its tasks; this only catches a hang

LADDER = """
[codecs.h264]
encoder = "libx264"
preset = "medium"
params = "open-gop=0:scenecut=0"

[[video]]
id = "h264-270p"
codec = "h264"
width = 480
height = 270
bitrate_kbps = 400
vmaf_floor = 0

[[audio.renditions]]
id = "aac-64k"
codec = "aac"
bitrate_kbps = 64
"""


@pytest.fixture(scope="module")
def long_source(media_dir: Path) -> Path:
    """60 s: its one encode task (one 60 s chunk) is surely still running when it is caught."""
    path = media_dir / "signals-60s.mp4"
    if not path.exists():
        make_clip(path, seconds=60, audio=("eng",))
    return path


def _state(pid: int) -> str | None:
    """The process's state letter (``R``, ``S``, ``T``, ``Z``...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _naming(work: Path, *, ffmpeg_only: bool = False, encodes_only: bool = False) -> list[int]:
    """Live (not zombie) processes other than this one whose command line names ``work``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(str(work).encode() in a for a in argv):
            continue
        if (ffmpeg_only or encodes_only) and b"ffmpeg" not in os.path.basename(argv[0]):
            continue
        if encodes_only and b"-c:v" not in argv:
            continue
        if _state(int(d.name)) not in (None, "Z", "X"):
            found.append(int(d.name))
    return found


def _wait_for(what: str, probe, proc: subprocess.Popen, err_path: Path, guard_s: float = HANG_GUARD_S):
    deadline = time.monotonic() + guard_s
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        assert proc.poll() is None, f"the ingest exited before {what}:\n{err_path.read_text()[-3000:]}"
        time.sleep(0.05)
    pytest.fail(f"no {what} within the {guard_s:.0f} s hang guard:\n{err_path.read_text()[-3000:]}")


def _freeze_the_encode(work: Path, proc: subprocess.Popen, err_path: Path) -> list[int]:
    encode = _wait_for("ffmpeg encode", lambda: _naming(work, encodes_only=True), proc, err_path)[0]
    os.kill(encode, signal.SIGSTOP)
    _wait_for("stopped encode", lambda: _state(encode) == "T", proc, err_path)
    return [encode]


def _interrupt(sig: signal.Signals | None, source: Path, tmp_path: Path, flags: list[str], freeze, *,
               to_group: bool = False, failure: str = "") -> str:
    """Run ``vodstack ingest SOURCE FLAGS``, let ``freeze`` find (and freeze) children, signal the
    ingest (``sig`` None: no signal, it fails by itself with ``failure`` in its error line), check
    what is left once it has exited; its stderr."""
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    err_path = tmp_path / "ingest.err"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VODSTACK_FFMPEG", None)
    args = [sys.executable, "-m", "vodstack", "ingest", str(source), "--title", "t", "--out", str(out),
            "--jobs", "2", "--nice", "10", "--json", "--work-dir", str(work), *flags]
    with open(err_path, "wb") as err:
        # its own session only so that the clean-up below can end all of it; the signal goes to the pid
        proc = subprocess.Popen(args, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    try:
        frozen = freeze(work, proc, err_path)
        if sig is None:
            pass
        elif to_group:  # as a terminal's Ctrl-C: the whole foreground group (its Dask workers too)
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)  # to the ingest process only, not to its group
        try:
            code = proc.wait(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the ingest did not exit within {HANG_GUARD_S:.0f} s of {sig.name if sig else 'the failure'}: it waits on a "
                        f"child nothing killed\n{err_path.read_text()[-3000:]}")

        # after the ingest has exited: nothing it started is alive (the frozen ones included)
        assert [pid for pid in frozen if _state(pid) not in (None, "Z")] == [], "a frozen child outlived the ingest"
        assert _naming(work) == []
        stderr = err_path.read_text()
        assert code == (1 if sig is None else 128 + sig), stderr[-3000:]
        ours = [line for line in stderr.splitlines() if line.startswith("vodstack")]
        words = f"vodstack: error: {failure}" if sig is None else f"interrupted by {sig.name}"
        assert len(ours) == 1 and words in ours[0], stderr[-3000:]
        assert "Traceback" not in stderr
        assert not [p for p in out.rglob("*") if p.name in ("title.json", "master.m3u8", "manifest.mpd")]
        assert list(work.iterdir()) == []  # the work folder is removed
        return stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in _naming(work):  # SIGKILL ends a stopped process too
            os.kill(pid, signal.SIGKILL)


def _interrupt_mid_encode(sig: signal.Signals, executor: str, source: Path, tmp_path: Path, *,
                          to_group: bool = False) -> str:
    ladder = tmp_path / "ladder.toml"
    ladder.write_text(LADDER, encoding="utf-8")
    flags = ["--ladder", str(ladder), "--segment-duration", "4", "--chunk-duration", "60", "--no-vmaf",
             "--executor", executor]
    return _interrupt(sig, source, tmp_path, flags, _freeze_the_encode, to_group=to_group)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_every_ffmpeg_of_the_local_pool(sig, long_source, tmp_path):
    _interrupt_mid_encode(sig, "local", long_source, tmp_path)


def test_a_signal_stops_the_ffmpeg_of_a_dask_local_cluster(long_source, tmp_path):
    pytest.importorskip("distributed")
    stderr = _interrupt_mid_encode(signal.SIGTERM, "dask://local", long_source, tmp_path)
    assert "not seen returning" not in stderr  # every task returned (none left to a dying worker)


def test_ctrl_c_to_the_process_group_of_a_dask_local_ingest(long_source, tmp_path):
    """The workers of ``dask://local`` are in the ingest's group and ignore SIGINT (no traceback
    from a worker killed by it); the ingest stops their tasks as for a signal to itself alone."""
    pytest.importorskip("distributed")
    stderr = _interrupt_mid_encode(signal.SIGINT, "dask://local", long_source, tmp_path, to_group=True)
    assert "not seen returning" not in stderr  # the workers lived on and their tasks returned


def test_a_signal_stops_the_ffmpeg_of_a_task_running_on_a_dask_worker(long_source, tmp_path):
    """A cluster that outlives the ingest (``dask://HOST:PORT``): cancelling the Dask future alone
    leaves a running task alone, so the task must learn it is cancelled and kill its ffmpeg."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        _interrupt_mid_encode(signal.SIGINT, f"dask://{address}", long_source, tmp_path)


#: how each stage's ffmpeg command can be told apart (shell ``case`` patterns over " $* ")
STAGE_PATTERNS = {
    "audio": '*" -c:a "*',
    "cut": '*".preroll.mp4 -map 0:v:0 -c copy "*',  # the pre-roll segment dropped from a chunk
    "merge": '*" -f concat "*',
    "validate": '*" -f null "*',  # decode + VMAF
    "package": '*" -f hls "*',
}
WRAPPER = """#!/bin/sh
# the real ffmpeg, except that a child of one stage stops itself (SIGSTOP) before it becomes ffmpeg
case " $* " in
  {pattern}) kill -STOP $$ ;;
esac
exec {ffmpeg} "$@"
"""


def _frozen_children(work: Path, proc: subprocess.Popen, err_path: Path) -> list[int]:
    return _wait_for("frozen child", lambda: [p for p in _naming(work) if _state(p) == "T"], proc, err_path)


@pytest.mark.parametrize("stage, sig", [("audio", signal.SIGINT), ("cut", signal.SIGTERM), ("merge", signal.SIGINT),
                                        ("validate", signal.SIGTERM), ("package", signal.SIGINT)],
                         ids=lambda v: v.name if isinstance(v, signal.Signals) else v)
def test_a_signal_in_any_stage_kills_that_stages_children(stage, sig, clip, ffmpeg_exe, tmp_path):
    """Every stage's children, not only the encode's: ``--ffmpeg`` is a wrapper whose children of
    that stage freeze before they exec ffmpeg; the signal must get rid of them all the same."""
    wrapper = tmp_path / "ffmpeg-freezing"
    wrapper.write_text(WRAPPER.format(pattern=STAGE_PATTERNS[stage], ffmpeg=ffmpeg_exe), encoding="utf-8")
    wrapper.chmod(0o755)
    flags = ["--segment-duration", "2", "--chunk-duration", "2", "--ffmpeg", str(wrapper)]
    _interrupt(sig, clip, tmp_path, flags, _frozen_children)


FAIL_AUDIO_WHILE_VIDEO_FROZEN = """#!/bin/sh
# the real ffmpeg, except: the video encode stops itself (SIGSTOP), the audio encode fails once it has
case " $* " in
  *" -c:v "*) echo $$ > {flag}.tmp; mv {flag}.tmp {flag}; kill -STOP $$ ;;
  *" -c:a "*) while [ ! -e {flag} ]; do sleep 0.05; done; echo "audio says no" >&2; exit 3 ;;
esac
exec {ffmpeg} "$@"
"""


def test_a_failing_task_stops_the_running_ones(long_source, ffmpeg_exe, tmp_path):
    """The first failure cancels the rest, running ones included: the audio task fails while the
    video encode (frozen, so it never ends by itself) runs; the ingest exits with the audio's
    error and leaves nothing running."""
    wrapper = tmp_path / "ffmpeg-failing"
    wrapper.write_text(FAIL_AUDIO_WHILE_VIDEO_FROZEN.format(flag=tmp_path / "video-frozen", ffmpeg=ffmpeg_exe),
                       encoding="utf-8")
    wrapper.chmod(0o755)
    ladder = tmp_path / "ladder.toml"
    ladder.write_text(LADDER, encoding="utf-8")
    flags = ["--ladder", str(ladder), "--chunk-duration", "60", "--no-vmaf", "--ffmpeg", str(wrapper)]
    flag = tmp_path / "video-frozen"

    def frozen_video(work: Path, proc: subprocess.Popen, err_path: Path) -> list[int]:
        # the ingest may be gone already (that is the point): the wrapper wrote down its pid first
        deadline = time.monotonic() + HANG_GUARD_S
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert flag.exists(), err_path.read_text()[-3000:]
        return [int(flag.read_text())]

    stderr = _interrupt(None, long_source, tmp_path, flags, frozen_video,
                        failure="encode audio0-aac-64k: ffmpeg exited with 3")
    assert "audio says no" in stderr


# -- the one place children start: origin.transcode.ffmpeg.run_child, under an executor ---------------

def _gone(pid: int) -> bool:
    return _state(pid) in (None, "Z")


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid), f"process {pid} still alive"


def _sleeper(pid_file: str) -> None:
    """A task whose child (a shell) starts a grandchild in its process group and waits on it."""
    from origin.transcode.ffmpeg import run_child

    run_child(["sh", "-c", f'sleep 300 & echo $$ $! > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; wait'],
              what="sleeper")


def test_cancel_kills_the_whole_process_group_of_a_running_task(tmp_path):
    from origin.transcode.errors import TaskCancelled
    from origin.transcode.executor import CANCEL_MARKER, LocalExecutor

    executor = LocalExecutor(2, str(tmp_path / CANCEL_MARKER))
    pid_file = tmp_path / "pids"
    try:
        future = executor.submit(_sleeper, str(pid_file))
        deadline = time.monotonic() + HANG_GUARD_S
        while not pid_file.exists() and time.monotonic() < deadline:
            assert not future.done(), future.exception()
            time.sleep(0.02)
        shell, sleep = (int(x) for x in pid_file.read_text().split())
        assert not _gone(shell) and not _gone(sleep)
        executor.cancel()  # returns once the task has returned
        assert isinstance(future.exception(timeout=0), TaskCancelled)
        assert _gone(shell)  # the task's own child, reaped before the task returned
        _wait_gone(sleep)  # its grandchild: SIGKILLed with the group
    finally:
        executor.close()


def _starter(flag: str) -> None:
    from origin.transcode.ffmpeg import run_child

    run_child(["sh", "-c", f"touch {flag}"], what="starter")


@pytest.mark.parametrize("how", ["marker", "work folder removed"])
def test_a_cancelled_ingest_starts_no_new_child(how, tmp_path):
    from origin.transcode.errors import TaskCancelled
    from origin.transcode.executor import CANCEL_MARKER, run_task

    work = tmp_path / "work"
    work.mkdir()
    if how == "marker":
        (work / CANCEL_MARKER).write_text("")
    else:
        work.rmdir()
    with pytest.raises(TaskCancelled):
        run_task(str(work / CANCEL_MARKER), _starter, str(tmp_path / "started"))
    assert not (tmp_path / "started").exists()


def test_only_ffmpeg_py_starts_processes():
    """Every child of an ingest goes through ``run_child`` (registered, killed on cancellation):
    no other module of the pipeline starts a process of its own."""
    root = REPO / "origin" / "transcode"
    starters = ("subprocess", "os.system", "os.popen", "os.spawn", "os.exec", "os.fork", "create_subprocess",
                "multiprocessing")
    offenders = [f"{p.name}: {word}" for p in sorted(root.glob("*.py")) if p.name != "ffmpeg.py"
                 for word in starters if word in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_the_interrupted_line_says_whether_the_title_was_already_out(capsys):
    """A signal after the entry points were written (while the executor closes) must not claim
    that nothing was published: the progress events tell the CLI the publish stage finished."""
    from vodstack.commands.ingest import RichEvents, interrupted

    events = RichEvents(enabled=False)
    events.advance("publish", 5, 6)
    assert interrupted(signal.SIGINT, keep_work=False, published="publish" in events.finished) == 130
    events.advance("publish", 6, 6)
    assert interrupted(signal.SIGTERM, keep_work=True, published="publish" in events.finished) == 143
    first, second = capsys.readouterr().err.splitlines()
    assert first.startswith("vodstack: ingest interrupted by SIGINT: ") and first.endswith("nothing published")
    assert "work folder kept" in second and second.endswith("but the title was already published")

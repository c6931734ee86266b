"""Headless video jobs: one driver or many, optionally split across processes with accelerate.

Under `accelerate launch`, driver files are shared out across processes (each rendered exactly
once, with deterministic output names); one long video is split into frame ranges that every
process renders into the same work folder, and the main process assembles it.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import asdict, replace
from pathlib import Path

import contextlib

from retarget.engine import JobSummary, OfflineRenderer, WorkFolder, job_key, work_dir_for, work_lock_for
from retarget.config.render import RenderOptions
from retarget.engine.time_range import TimeRange
from retarget.errors import BadInputError
from retarget.names.kinds import BLENDSHAPE_SUFFIXES, VIDEO_SUFFIXES
from retarget.outputs import claim_folder


def expand_drivers(drivers: list[Path]) -> tuple[list[Path], bool]:
    """Driver arguments -> driver files; True when it is a batch (several files, or a folder of videos)."""
    expanded: list[Path] = []
    batch = len(drivers) > 1
    for driver in drivers:
        if driver.is_dir():
            videos = sorted(p for p in driver.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES + BLENDSHAPE_SUFFIXES)
            if videos:  # a folder of videos is a batch; a folder of images is one image-sequence driver
                expanded.extend(videos)
                batch = True
                continue
        expanded.append(driver)
    return expanded, batch


def batch_output(out_dir: Path, driver: Path) -> Path:
    return out_dir / f"{driver.stem}.mp4"


def distributed_state():
    """accelerate's view of the processes when launched with `accelerate launch`, else None (no set-up cost)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    # Without CUDA, accelerate only forms a process group (gloo) when told it runs on CPUs.
    return PartialState(cpu=not torch.cuda.is_available())


def offline_renderer(retargeter, context, identity_photo: Path, files, settings, mapping, neutral=None,
                     exp_adapter=None, ref_lora=None, *, driver_face: int | None = None, follow_box=None,
                     key_extra: dict | None = None) -> OfflineRenderer:
    """The renderer of one identity's video jobs: analyzers speaking the loaded adapter's format (set to the
    driver's neutral when given; tracking face `driver_face`, numbered from 1 left to right, or the face nearest
    `follow_box`), and the job key that lets a stopped render resume (files by content; `key_extra` names the
    chosen faces: another face is another job)."""
    def make_analyzer():
        analyzer = retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes, identity_flame=context.flame,
                                              face=driver_face)
        if follow_box is not None:
            analyzer.follow_face(follow_box)
        if neutral is not None:
            analyzer.set_neutral_from(neutral)
        return analyzer

    description = files.description if files is not None else ""
    key = job_key(identity_photo, description, exp_adapter, ref_lora, models=files)  # reads whole files
    bridge = getattr(retargeter, "bridge", None)
    if bridge is not None:  # CSV (and bridge-mode) frames depend on it: a refitted bridge is another job
        from retarget.expression.bridge_mapping import bridge_fingerprint

        key["bridge"] = bridge_fingerprint(bridge)
    key.update(key_extra or {})
    renderer = OfflineRenderer(retargeter.pipeline, context, make_analyzer, settings, key, mapping=mapping)
    renderer.adapter_file = exp_adapter or (files.exp_adapter if files is not None else None)
    return renderer


def run_video_jobs(renderer: OfflineRenderer, drivers: list[Path], batch: bool, out: Path, options: RenderOptions,
                   state=None, cancel: threading.Event | None = None, on_frame=None) -> list[JobSummary]:
    """Render each driver (this process's share of them); on_frame(driven, image) after each rendered frame."""
    rank = state.process_index if state is not None else 0
    world = state.num_processes if state is not None else 1
    if batch:
        if out.suffix:
            raise BadInputError(f"--out {out}: several drivers need an output folder, not a file name")
        stems = [d.stem for d in drivers]
        duplicates = sorted({s for s in stems if stems.count(s) > 1})
        if duplicates:
            raise BadInputError(f"drivers share the output name {duplicates[0]}.mp4; rename them")
        claim_folder(out)  # never fill a folder of the user's own files (it gets our marker)
        mine = drivers[rank::world]
        summaries = [renderer.render(str(d), batch_output(out, d), options, cancel=cancel, on_frame=on_frame, rank=rank) for d in mine]
    elif world > 1:
        summaries = [_render_split(renderer, drivers[0], out, options, state, cancel, on_frame)]
    else:
        summaries = [renderer.render(str(drivers[0]), out, options, cancel=cancel, on_frame=on_frame)]
    if state is not None:
        from accelerate.utils import gather_object

        summaries = [JobSummary(**s) for s in gather_object([asdict(s) for s in summaries])]
    return summaries


def _render_split(renderer: OfflineRenderer, driver: Path, out: Path, options: RenderOptions, state, cancel, on_frame=None) -> JobSummary:
    """One video, frame ranges across processes; the main process prepares the work folder and assembles."""
    from retarget.media.source_info import probe_source

    if not TimeRange.of(options).whole:
        raise BadInputError("--start/--end: a time range is rendered by one process; run it without accelerate launch")
    info = probe_source(str(driver), fps=options.fps)  # once: the split, the rate and the audio
    total = info.frame_count
    if not total:
        raise BadInputError(f"{driver}: frame count unknown or zero; cannot split it across processes")
    rank, world = state.process_index, state.num_processes
    share = -(-total // world)
    frame_range = (rank * share, min(total, (rank + 1) * share))
    # The main process holds the work folder's lock for the whole split job; the ranks render inside it.
    with work_lock_for(out) if state.is_main_process else contextlib.nullcontext():
        if state.is_main_process:
            WorkFolder.for_output(out).prepare(renderer.manifest(str(driver), renderer.mapping_settings(), options),
                                               options.resume)
        state.wait_for_everyone()
        mine = replace(options, frame_range=frame_range, assemble=False, resume=True, lock=False)
        summary = renderer.render(str(driver), out, mine, cancel=cancel, on_frame=on_frame, rank=rank)
        state.wait_for_everyone()
        if state.is_main_process:
            summary.audio = renderer.assemble(str(driver), out, work_dir_for(out), summary.frames,
                                              info.rate, info.has_audio, options.side_by_side, options.video)
        state.wait_for_everyone()
    return summary


def summary_table(summaries: list[JobSummary]) -> str:
    """One row per job; no time column (the command prints one total), and the process column only when the job
    was split across processes."""
    split = any(s.rank for s in summaries)
    header = ("driver", "output", "frames", "no face", "rendered", "reused", "frames/s") + (("process",) if split else ())
    rows = [
        (Path(s.driver).name, Path(s.output).name, str(s.frames), str(s.frames_without_face), str(s.rendered),
         str(s.reused), f"{s.fps:.2f}") + ((str(s.rank),) if split else ())
        for s in summaries
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def print_summary(summaries: list[JobSummary], state=None) -> None:
    if state is None or state.is_main_process:
        print(summary_table(summaries), file=sys.stdout)

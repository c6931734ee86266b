"""Putting a source's audio under a finished video: packets copied where the container takes the
codec, else re-encoded to AAC, always trimmed to the video's length and swapped in atomically.
"""

from __future__ import annotations

import heapq
import itertools
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.media.frame_sink import remove_file
from retarget.outputs import fresh_temp

# Audio codecs worth copying into MP4/MOV: players handle these there. FFmpeg also muxes PCM into
# MP4 (as 'ipcm'), but few players decode that, so PCM and anything else is re-encoded to AAC.
_MP4_COPY_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})


def probe_audio(path: Path) -> str | None:
    """The codec of the first audio stream of `path`, None when it has none; BadInputError if unreadable."""
    import av

    if not path.is_file():
        raise BadInputError(f"{path}: does not exist (wanted for its audio)")
    try:
        with av.open(str(path)) as container:
            stream = _audio_stream(container)
            return stream.codec_context.name if stream is not None else None
    except av.FFmpegError as err:
        raise BadInputError(f"{path}: its audio cannot be read ({' '.join(str(getattr(err, 'strerror', err)).split())})") from None


def _audio_stream(container):
    return container.streams.audio[0] if container.streams.audio else None


def _video_seconds(stream, container) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return (container.duration or 0) / 1_000_000


def mux_audio(video_path, audio_source_path, out_path, start: float = 0.0) -> bool:
    """Write `out_path`: the video of `video_path` (copied, not re-encoded) with the first audio
    stream of `audio_source_path`, trimmed to the video's duration. Packets are copied when the
    output container takes the codec; otherwise the audio is re-encoded to AAC. `out_path` may be
    `video_path` (the swap is atomic). Returns False, writing the video alone, when the source has
    no audio. `start` > 0 (a time range's render): the audio from that second on, cut to the sample, so
    always re-encoded (copied packets could only be cut at packet boundaries).
    """
    import av

    video_path, out_path = Path(video_path), Path(out_path)
    temp = fresh_temp(out_path, "muxing")
    try:
        codec = probe_audio(Path(audio_source_path))
        copy = codec is not None and start <= 0 and _copyable(codec, out_path)
        try:
            _mux(video_path, audio_source_path if codec else None, temp, copy=copy, start=start)
        except av.FFmpegError:
            if not copy:
                raise
            # The muxer refused the copied codec after all: fall back to AAC.
            remove_file(temp)
            _mux(video_path, audio_source_path, temp, copy=False, start=start)
        os.replace(temp, out_path)
    except BaseException:
        remove_file(temp)
        raise
    return codec is not None


def _copyable(codec: str, out_path: Path) -> bool:
    import av

    with av.open(os.devnull, mode="w", format=_format_for(out_path)) as probe:
        supported = probe.supported_codecs
        mp4_like = "mp4" in probe.format.name or "mov" in probe.format.name
    return codec in supported and (codec in _MP4_COPY_CODECS or not mp4_like)


def _format_for(path: Path) -> str:
    formats = {"mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi"}
    return formats.get(path.suffix.lower().lstrip("."), "mp4")


def _mux(video_path: Path, audio_path, out: Path, *, copy: bool, start: float = 0.0) -> None:
    import av

    with av.open(str(video_path)) as vin, av.open(str(out), mode="w", format=_format_for(out),
                                                    options={"movflags": "+faststart"}) as oc:
        # Keep the video's own tags (retarget.provenance's "AI-generated" comment and description).
        oc.metadata.update({k: v for k, v in vin.metadata.items() if k in ("comment", "description", "title")})
        vstream = vin.streams.video[0]
        ovideo = oc.add_stream_from_template(vstream)
        limit = _video_seconds(vstream, vin)
        streams = [_copied_packets(vin, vstream, ovideo, None)]
        ain = av.open(str(audio_path)) if audio_path is not None else None
        try:
            if ain is not None:
                astream = ain.streams.audio[0]
                if copy:
                    oaudio = oc.add_stream_from_template(astream)
                    streams.append(_copied_packets(ain, astream, oaudio, limit))
                else:
                    rate = astream.rate or 48000
                    # WAVs often carry an unordered "1 channels" layout the AAC encoder rejects.
                    layout = "mono" if astream.layout.nb_channels == 1 else "stereo"
                    oaudio = oc.add_stream("aac", rate=rate, layout=layout)
                    streams.append(_aac_packets(ain, astream, oaudio, limit, start))
            # Interleave by time ourselves: handing the muxer all video first would make it
            # buffer the whole video in memory while it waits for audio.
            for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
                oc.mux(packet)
        finally:
            if ain is not None:
                ain.close()


def _copied_packets(container, stream, out_stream, limit: float | None):
    tb = stream.time_base
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's end-of-stream flush packet
            continue
        seconds = float(packet.dts * tb)
        if limit is not None and packet.pts is not None and float(packet.pts * tb) >= limit:
            break
        packet.stream = out_stream
        yield seconds, out_stream.index, packet


def _aac_packets(container, stream, out_stream, limit: float, start: float = 0.0):
    """Decode, drop the first `start` seconds and cut `limit` seconds after, to the sample, and re-encode to AAC;
    yields (time, index, packet)."""
    import av

    rate, layout = out_stream.rate, out_stream.layout.name
    to_planar = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    # The AAC encoder takes fixed-size frames; a second resampler re-chunks the trimmed audio.
    to_frames = av.AudioResampler(format="fltp", layout=layout, rate=rate,
                                  frame_size=out_stream.codec_context.frame_size or 1024)
    room = int(round(limit * rate))
    skip = int(round(max(start, 0.0) * rate))
    written = 0

    def planar_chunks():
        # Decoded audio starts at 0: FFmpeg already dropped the source encoder's priming samples.
        for frame in _decoded_audio(container, stream):
            yield from to_planar.resample(frame)
        yield from to_planar.resample(None)

    def sized_frames():
        nonlocal room, skip
        for chunk in planar_chunks():
            if room <= 0:
                break
            data = chunk.to_ndarray()
            if skip:
                dropped = min(skip, data.shape[1])
                data, skip = data[:, dropped:], skip - dropped
                if not data.shape[1]:
                    continue
            data = data[:, :room]
            room -= data.shape[1]
            piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=layout)
            piece.sample_rate = rate
            yield from to_frames.resample(piece)
        yield from to_frames.resample(None)

    for frame in itertools.chain(sized_frames(), [None]):
        if frame is not None:
            frame.pts, frame.time_base = written, Fraction(1, rate)
            written += frame.samples
        for packet in out_stream.encode(frame):
            seconds = float(packet.dts * packet.time_base) if packet.dts is not None else 0.0
            yield seconds, out_stream.index, packet


def _decoded_audio(container, stream):
    import av

    try:
        for packet in container.demux(stream):
            yield from packet.decode()
    except av.FFmpegError:
        return  # a damaged tail ends the audio; the video still gets what decoded

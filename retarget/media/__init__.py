"""Reading drivers and writing outputs. Sources (`sources.open_source`, one module per kind) yield Frames and are
probed once into a `source_info.SourceInfo`; sinks (video_sink, png_sequence, blendshape_csv, side_by_side,
frame_sink) write under a temporary name next to their target and rename on close(), so an interrupted run never
leaves a half-written file under the final name."""

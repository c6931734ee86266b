"""The shared vocabulary every layer reads: the 52 blendshape names (and their mirror), and the media kinds (file
suffixes, webcam specs). Leaves: they import nothing of ours."""

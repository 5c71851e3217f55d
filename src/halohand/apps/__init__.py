"""What users run: the command line (``apps.cli``), the web viewer, the demo, the numpy
renderer, mesh export and keypoint-file I/O. Nothing below ``apps`` imports it."""

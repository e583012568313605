"""Learned perceptual full-reference metrics: LPIPS (:mod:`.lpips`); their rows of the metric
table are in :mod:`.table`."""

"""Step scripts per model (`training/<model>/`), following the step-script contract of `pipelines.contract`."""

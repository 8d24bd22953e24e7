"""Step scripts per model (`training/<model>/`), following the contract in `pipelines.contract`."""

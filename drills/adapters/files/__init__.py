"""Files people write: scenario, policy and plan files, read with their line numbers."""

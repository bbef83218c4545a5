"""What drills keeps on disk: where (paths), the fsynced journal, and the history of past drills."""

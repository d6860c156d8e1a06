"""What a run shows and leaves behind: the live view, the summary table, JSON and JUnit reports."""

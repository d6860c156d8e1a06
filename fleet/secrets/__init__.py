"""Secret references (``vault:``, ``aws-sm:``, ``env:``, ``file:``), their sources, the run cache and
the redaction registry that keeps secret values out of logs, reports and errors."""

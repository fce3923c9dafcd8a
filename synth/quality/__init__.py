"""Quality, not just diversity: free signals on every record (signals.py), an LLM judge with rubrics (judge.py,
scores.py), and the selection of a small, good, diverse subset (select.py)."""

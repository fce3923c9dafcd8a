import json

from hypothesis import given, settings, strategies as st

from synth.files import JsonlAppender, read_complete_lines


def test_cut_tail_is_skipped_and_truncated(tmp_path):
    path = tmp_path / "data.jsonl"
    with JsonlAppender(path) as out:
        out.append({"n": 1})
        out.append({"n": 2})
    with open(path, "ab") as fh:
        fh.write(b'{"n": 3, "cut')
    assert [r["n"] for r in read_complete_lines(path)] == [1, 2]
    with JsonlAppender(path) as out:
        out.append({"n": 4})
    assert [r["n"] for r in read_complete_lines(path)] == [1, 2, 4]
    assert path.read_bytes().endswith(b'{"n": 4}\n')


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3), min_size=1, max_size=6), st.data())
def test_file_cut_at_any_byte_recovers_complete_lines(tmp_path_factory, rows, data):
    path = tmp_path_factory.mktemp("cut") / "f.jsonl"
    with JsonlAppender(path) as out:
        for row in rows:
            out.append(row)
    raw = path.read_bytes()
    cut = data.draw(st.integers(0, len(raw)))
    path.write_bytes(raw[:cut])
    complete = raw[:cut].count(b"\n")
    assert list(read_complete_lines(path)) == [json.loads(json.dumps(r)) for r in rows[:complete]]

from feedback_app.preferences.dataset import (
    PromptView,
    content_hash,
    in_test_split,
    jsonl_bytes,
    trl_row,
)


def test_text_prompt_gives_trls_standard_row():
    row = trl_row(PromptView("h", text="Hi"), " yes", " no")
    assert row == {"prompt": "Hi", "chosen": " yes", "rejected": " no"}


def test_chat_prompt_gives_trls_conversational_row():
    chat = [{"role": "user", "content": "Hi"}]
    row = trl_row(PromptView("h", messages=chat), "yes", "no")
    assert row["prompt"] == chat
    assert row["chosen"] == [{"role": "assistant", "content": "yes"}]
    assert row["rejected"] == [{"role": "assistant", "content": "no"}]


def test_split_is_by_prompt_deterministic_and_near_the_fraction():
    hashes = [f"prompt-{i}" for i in range(4000)]
    first = [in_test_split(h, test_fraction=0.2, seed=1) for h in hashes]
    assert first == [in_test_split(h, test_fraction=0.2, seed=1) for h in hashes]
    assert 0.17 < sum(first) / len(first) < 0.23
    assert first != [in_test_split(h, test_fraction=0.2, seed=2) for h in hashes]
    assert not any(in_test_split(h, test_fraction=0.0, seed=1) for h in hashes)


def test_same_rows_give_the_same_bytes_and_hash_and_any_change_moves_it():
    rows = [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    a = content_hash([("train.jsonl", jsonl_bytes(rows))])
    assert a == content_hash([("train.jsonl", jsonl_bytes([dict(reversed(rows[0].items()))]))])
    assert a != content_hash([("train.jsonl", jsonl_bytes([{**rows[0], "chosen": "C"}]))])
    assert a != content_hash([("test.jsonl", jsonl_bytes(rows))])


HOSTILE = "".join(map(chr, range(0x80))) + 'é€😀\u2028\u2029\ufeff"\\'


def test_jsonl_bytes_are_the_canonical_json_dumps_bytes_snapshot_hashes_were_made_of():
    import json

    rows = [
        trl_row(PromptView("h", text=HOSTILE), HOSTILE, "b", {"agreement": 0.333333, "round": 2}),
        trl_row(PromptView("h", messages=[{"role": "user", "content": HOSTILE}]), "a", HOSTILE),
    ]
    canonical = b"".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for r in rows
    )
    assert jsonl_bytes(rows) == canonical


def test_recency_copies_keep_the_epoch_and_follow_the_weights():
    from feedback_app.preferences.dataset import recency_copies, recency_weights

    assert recency_copies([0.7] * 9, seed=3) == [1] * 9  # equal weights: the file unchanged
    weights = recency_weights([1] * 40 + [2] * 40 + [3] * 40, half_life=1.0)
    row_weights = [weights[r] for r in [1] * 40 + [2] * 40 + [3] * 40]
    copies = recency_copies(row_weights, seed=0)
    assert sum(copies) == 120
    per_round = [sum(copies[i : i + 40]) for i in (0, 40, 80)]
    expected = [120 * w / sum(weights[r] * 40 for r in (1, 2, 3)) * 40 for w in weights.values()]
    assert all(abs(a - b) <= 1 for a, b in zip(per_round, expected, strict=True))
    assert per_round[0] < per_round[1] < per_round[2]
